"""The rendered docs site (`make docs` -> `_docs/`) checked in a real browser (headless Chromium).

Builds the site with `tools/render_docs.py` unless `_docs/` was built after the last change to the notebooks
and the library (e.g. by `make docs` earlier in the same CI run). Screenshots go to `tests/screenshots/`
(git-ignored): look at them to see what a reader sees. Needs `chromium` and a Bangla font
(`tools/install_system_deps.sh`).
"""
import importlib, inspect, json, re, shutil, subprocess, sys, tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / '_docs'
NBS = ROOT / 'nbs'
SHOTS = ROOT / 'tests' / 'screenshots'
sys.path.insert(0, str(ROOT / 'tools'))
import render_docs  # noqa: E402

CHROME_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                '--disable-background-networking', '--disable-component-update', '--disable-sync',
                '--disable-dev-shm-usage', '--hide-scrollbars', '--force-device-scale-factor=1']
WINDOW = (1280, 1600)
SYSDEPS_HINT = "run `bash tools/install_system_deps.sh` (Debian/Ubuntu: chromium, fonts-beng)"   # as the README says
pytestmark = pytest.mark.docs   # skipped without Chromium or a Bangla font, except under CI=true (see conftest.py)


def _newest_source_mtime():
    srcs = list(NBS.glob('*.ipynb')) + list((ROOT / 'bangla_data').glob('*.py')) + [ROOT / 'tools' / 'render_docs.py']
    return max(p.stat().st_mtime for p in srcs)


@pytest.fixture(scope='module')
def site():
    "The `_docs/` folder, (re)built if missing or older than any notebook, library module or the renderer."
    manifest = DOCS / 'build.json'
    if not manifest.exists() or manifest.stat().st_mtime < _newest_source_mtime() or json.loads(manifest.read_text()).get('failed'):
        r = subprocess.run([sys.executable, str(ROOT / 'tools' / 'render_docs.py')], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, f"docs build failed:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
    return DOCS


@pytest.fixture(scope='module')
def chromium():
    exe = next((shutil.which(n) for n in ('chromium', 'chromium-browser', 'google-chrome') if shutil.which(n)), None)
    if exe is None: pytest.skip(f"headless Chromium not found: {SYSDEPS_HINT}")
    return exe


def _chrome(exe, url, *args, timeout=120):
    with tempfile.TemporaryDirectory(prefix='chrome-profile-') as prof:
        r = subprocess.run([exe, *CHROME_FLAGS, f'--user-data-dir={prof}', *args, url],
                           capture_output=True, text=True, timeout=timeout)
    return r


def screenshot(exe, page: Path, png: Path):
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    r = _chrome(exe, page.as_uri(), f'--window-size={WINDOW[0]},{WINDOW[1]}', f'--screenshot={png}')
    assert png.exists(), f"chromium wrote no screenshot of {page.name} (exit {r.returncode}):\n{r.stderr[-2000:]}"
    return png


def dom(exe, page: Path) -> str:
    "The page's DOM after Chromium loaded it."
    r = _chrome(exe, page.as_uri(), '--dump-dom')
    assert r.returncode == 0 and '<body' in r.stdout, f"chromium could not load {page.name}:\n{r.stderr[-2000:]}"
    return r.stdout


def assert_real_png(png: Path):
    from PIL import Image
    head = png.read_bytes()[:8]
    assert head == b'\x89PNG\r\n\x1a\n', f"{png} is not a PNG"
    assert png.stat().st_size > 20_000, f"{png} is suspiciously small ({png.stat().st_size} bytes)"
    with Image.open(png) as im:
        assert im.size == WINDOW, im.size
        colors = im.convert('RGB').getcolors(maxcolors=1_000_000)
        assert colors is not None and len(colors) > 100, f"{png} is nearly blank ({len(colors or [])} colours)"
        # the sidebar (left 250 px) is tinted and has text, i.e. is not plain white
        side = im.convert('RGB').crop((0, 0, 250, 600)).getcolors(maxcolors=1_000_000)
        assert len(side) > 10, "no sidebar visible"


def section_pages():
    return [(nb, render_docs.page_name(nb)) for nb in render_docs.find_notebooks(NBS) if nb.stem != 'index']


def test_one_page_per_notebook(site):
    m = json.loads((site / 'build.json').read_text())
    assert m['failed'] == []
    assert (site / 'index.html').exists() == (NBS / 'index.ipynb').exists()
    assert section_pages(), "no numbered notebooks"
    for nb, page in section_pages():
        assert (site / page).exists(), f"{nb.name} has no page {page}"
    assert (site / 'site.css').exists()


def test_sidebar_links_every_section(site):
    pages = [p for _, p in section_pages()] + (['index.html'] if (site / 'index.html').exists() else [])
    for page in pages:
        html = (site / page).read_text(encoding='utf-8')
        nav = html[html.index('<nav class="sidebar"'):html.index('</nav>')]
        for nb, target in section_pages():
            title, _ = render_docs.nb_title(nb)
            assert f'href="{target}"' in nav and title.split('`')[0][:20] in nav, f"{page}: sidebar lacks {target}"


def _exported_callables(module_name):
    mod = importlib.import_module(module_name)
    for name in getattr(mod, '__all__', []):
        obj = getattr(mod, name)
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == module_name: yield name


def default_exp(nb: Path):
    for c in json.loads(nb.read_text(encoding='utf-8'))['cells']:
        m = re.search(r'^\s*#\|\s*default_exp\s+(\S+)', ''.join(c['source']), flags=re.M)
        if c['cell_type'] == 'code' and m: return m.group(1)


def test_pages_document_exported_functions(site):
    "Every exported function/class of a section has its show_doc (an anchored heading + signature) on its page."
    checked = 0
    for nb, page in section_pages():
        mod = default_exp(nb)
        if not mod: continue
        html = (site / page).read_text(encoding='utf-8')
        for name in _exported_callables(f'bangla_data.{mod}'):
            assert re.search(rf'<h[34] id="{name.lower()}"[^>]*>\s*(<code>)?{name}\b', html), f"{page}: no documentation for {name}"
            checked += 1
    assert checked >= 3
    env = (site / 'env.html').read_text(encoding='utf-8')
    assert 'set_seed' in env and 'Seed Python' in env  # the show_doc signature and docstring
    if (site / 'loading.html').exists():
        assert 'id="load_and_preprocess_data"' in (site / 'loading.html').read_text(encoding='utf-8')


def test_pages_have_images_and_no_tofu(site):
    pages = {p: (site / p).read_text(encoding='utf-8') for p in ['index.html'] + [p for _, p in section_pages()] if (site / p).exists()}
    with_img = [p for p, h in pages.items() if '<img' in h and 'data:image/png;base64,' in h]
    assert with_img, "no page has a plot"
    assert 'plotting.html' in with_img
    for p, h in pages.items():
        assert not re.search(r'UserWarning: Glyph \d+ .*missing from font', h), f"{p}: matplotlib drew Bangla as boxes (install fonts-beng)"
        assert 'Traceback (most recent call last)' not in h, f"{p}: shows a traceback"


def test_internal_links_resolve(site):
    "Links between pages land on a page that exists and, for public names, on its documentation."
    pages = {p.name: p.read_text(encoding='utf-8') for p in site.glob('*.html')}
    bad = []
    for name, h in pages.items():
        for href in re.findall(r'href="([^"]*)"', h):
            if re.match(r'^[a-z]+:', href) or href.endswith('.css') or href in ('', '#'): continue
            target, _, frag = href.partition('#')
            target = target or name
            if target not in pages: bad.append(f"{name} -> {href} (no such page)")
            elif frag and not frag.startswith('_') and f'id="{frag}"' not in pages[target]: bad.append(f"{name} -> {href} (no such anchor)")
    assert not bad, '\n'.join(sorted(set(bad)))


def test_bangla_font_installed():
    if shutil.which('fc-list') is None: pytest.skip(f"no fontconfig (fc-list) to find a Bangla font: {SYSDEPS_HINT}")
    r = subprocess.run(['fc-list', ':lang=bn', 'family'], capture_output=True, text=True)
    if not r.stdout.strip(): pytest.skip(f"no Bangla font for the browser/matplotlib: {SYSDEPS_HINT}")
    assert r.stdout.strip(), "no Bangla font for the browser/matplotlib: run tools/install_system_deps.sh"
    from bangla_data.plotting import find_bangla_font
    assert find_bangla_font() is not None


@pytest.mark.parametrize('page', ['index.html', 'env.html', 'plotting.html'])
def test_browser_screenshot(site, chromium, page):
    p = site / page
    if page == 'index.html' and not (NBS / 'index.ipynb').exists(): pytest.skip('no nbs/index.ipynb yet')
    png = screenshot(chromium, p, SHOTS / page.replace('.html', '.png'))
    assert_real_png(png)
    d = dom(chromium, p)
    assert '<nav class="sidebar"' in d and 'class="title"' in d
    if page != 'index.html': assert re.search(r'<h3 id="[a-z_]+"', d), "no function documentation in the DOM"
    if page == 'plotting.html': assert '<img' in d and 'বাংলা' in d
