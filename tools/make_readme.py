"""Write README.md from nbs/index.ipynb (nbdev_readme needs Quarto, which is not installable offline).

Markdown cells are copied; code cells without `#|` directives become ```python blocks; hidden cells are skipped.
`python tools/make_readme.py --check` exits 1 if README.md is not what it would write.
"""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render(nb_path=ROOT / 'nbs' / 'index.ipynb') -> str:
    nb = json.loads(nb_path.read_text(encoding='utf-8'))
    parts = []
    for cell in nb['cells']:
        src = ''.join(cell['source']).rstrip()
        if not src: continue
        if cell['cell_type'] == 'markdown':
            parts.append(src)
        elif cell['cell_type'] == 'code':
            lines = src.splitlines()
            directives = [l for l in lines if l.startswith('#|')]
            if any(d.split()[1:2] and d.split()[1] in ('hide', 'export', 'exporti', 'exports', 'default_exp') for d in directives): continue
            body = '\n'.join(l for l in lines if not l.startswith('#|')).strip()
            if body: parts.append(f"```python\n{body}\n```")
    note = "<!-- Generated from nbs/index.ipynb by tools/make_readme.py; edit the notebook, not this file. -->"
    return note + "\n\n" + "\n\n".join(parts) + "\n"


def main(argv):
    text = render()
    readme = ROOT / 'README.md'
    if '--check' in argv:
        if not readme.exists() or readme.read_text(encoding='utf-8') != text:
            print("README.md is out of date with nbs/index.ipynb: run `python tools/make_readme.py`", file=sys.stderr)
            return 1
        return 0
    readme.write_text(text, encoding='utf-8')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
