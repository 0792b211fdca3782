# bangla_data developer targets. PYTHON defaults to the project venv.
PYTHON ?= .venv/bin/python

.PHONY: docs docs-test sysdeps

# Render nbs/*.ipynb to a static HTML site in _docs/ (offline, no Quarto; executes every notebook).
docs:
	$(PYTHON) tools/render_docs.py

# Build the docs and check them in headless Chromium (screenshots in tests/screenshots/).
docs-test: docs
	$(PYTHON) -m pytest -q tests/test_docs.py

# Chromium and Bangla fonts (Debian/Ubuntu, needs root or sudo).
sysdeps:
	bash tools/install_system_deps.sh
