"""The rendered docs site (`make docs` -> `_docs/`) checked in a real browser (headless Chromium).

Builds the site with `tools/render_docs.py` unless `_docs/` was built after the last change to the notebooks
and the library (e.g. by `make docs` earlier in the same CI run). Screenshots go to `tests/screenshots/`
(git-ignored): look at them to see what a reader sees. Needs `chromium` and a Bangla font
(`tools/install_system_deps.sh`).
"""
import html as _html, importlib, inspect, json, re, shutil, subprocess, sys, tempfile
from html.parser import HTMLParser
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



# ---------------------------------------------------------------- show_doc: docments in a table, no markdown in code

_RAW_MD_LINK = re.compile(r'\[`[^`\n]+`\]\([^)\s]*\.html[^)\s]*\)')   # [`name`](page.html#name), as nbdev's add_links writes


class _CodeText(HTMLParser):
    "The text of every outermost <pre>/<code> element (highlighting spans dropped, entities resolved)."
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.depth, self.blocks, self._cur = 0, [], []
    def handle_starttag(self, tag, attrs):
        if tag in ('pre', 'code'):
            if self.depth == 0: self._cur = []
            self.depth += 1
    def handle_endtag(self, tag):
        if tag in ('pre', 'code') and self.depth:
            self.depth -= 1
            if self.depth == 0: self.blocks.append(''.join(self._cur))
    def handle_data(self, data):
        if self.depth: self._cur.append(data)


def code_texts(page_html: str):
    p = _CodeText()
    p.feed(page_html)
    return p.blocks


def raw_markdown_in_code(page_html: str):
    "Markdown links `[`name`](page.html#...)` shown as text inside <pre>/<code> blocks of a page."
    return [m for b in code_texts(page_html) for m in _RAW_MD_LINK.findall(b)]


def showdoc_section(page_html: str, anchor: str):
    "The show_doc output under `<h3 id=anchor>`, up to the next rule, heading or notebook cell (None if absent)."
    m = re.search(rf'<h[34] id="{re.escape(anchor)}"', page_html)
    if m is None: return None
    end = re.search(r'<hr\s*/?>|<h[1-4][\s>]|<div class="cell[\s"]', page_html[m.end():])
    return page_html[m.start():m.end() + (end.start() if end else len(page_html))]


def param_table(page_html: str, anchor: str):
    "The parameter table under the show_doc `anchor`: {name: details HTML}, or None when there is no table."
    sec = showdoc_section(page_html, anchor)
    t = re.search(r'<table>(.*?)</table>', sec or '', flags=re.S)
    if t is None: return None
    rows = {}
    for tr in re.findall(r'<tr>(.*?)</tr>', t.group(1), flags=re.S):
        tds = re.findall(r'<td>(.*?)</td>', tr, flags=re.S)
        if tds: rows[_html.unescape(re.sub(r'<[^>]+>', '', tds[0])).strip()] = tds[-1].strip()
    return rows


def signature_comments(page_html: str, anchor: str):
    "`# comment` lines inside the signature block of the show_doc `anchor`."
    sec = showdoc_section(page_html, anchor) or ''
    return [l for b in code_texts(sec) for l in b.splitlines() if re.search(r'(^|[,(]\s*)#\s', l)]


PLANTED_BAD = """<h3 id="prepare">prepare</h3><div class="highlight"><pre><span class="k">def</span> <span class="nf">prepare</span>(
    <span class="n">cache_dir</span>=<span class="kc">None</span>, <span class="c1"># the cache (default: [`default_cache_dir()`](store.html#default_cache_dir))</span>
    <span class="n">seed</span>:<span class="nb">int</span>=<span class="mi">42</span>, <span class="c1"># seed of [`set_seed`](env.html#set_seed)</span>
)</pre></div><p><em>Prepare.</em></p><p>inline <code>[`x`](a.html#x)</code></p><hr/>"""
PLANTED_GOOD = """<h3 id="prepare">prepare</h3><div class="highlight"><pre><span class="k">def</span> <span class="nf">prepare</span>(<span class="n">cache_dir</span>=<span class="kc">None</span>, <span class="n">seed</span>:<span class="nb">int</span>=<span class="mi">42</span>)</pre></div>
<p><em>Prepare.</em></p><table><thead><tr><th></th><th><strong>Details</strong></th></tr></thead><tbody>
<tr><td><code>cache_dir</code></td><td>the cache (default: <a href="store.html#default_cache_dir"><code>default_cache_dir()</code></a>)</td></tr>
<tr><td><code>seed</code></td><td>seed of <a href="env.html#set_seed"><code>set_seed</code></a></td></tr></tbody></table><hr/>"""


def test_doc_checks_catch_planted_html():
    "The checks below fail on the page nbdev's comment-style signatures produced, and pass on a table."
    assert raw_markdown_in_code(PLANTED_BAD) == ['[`default_cache_dir()`](store.html#default_cache_dir)',
                                                 '[`set_seed`](env.html#set_seed)', '[`x`](a.html#x)']
    assert raw_markdown_in_code('<pre>a = 1  # see [`f`](page.html#f)</pre>') == ['[`f`](page.html#f)']  # entities too
    assert param_table(PLANTED_BAD, 'prepare') is None
    assert len(signature_comments(PLANTED_BAD, 'prepare')) == 2
    assert raw_markdown_in_code(PLANTED_GOOD) == []
    assert signature_comments(PLANTED_GOOD, 'prepare') == []
    assert list(param_table(PLANTED_GOOD, 'prepare')) == ['cache_dir', 'seed']
    assert 'href="store.html#default_cache_dir"' in param_table(PLANTED_GOOD, 'prepare')['cache_dir']
    assert param_table(PLANTED_GOOD, 'other') is None


def test_renderer_puts_docments_in_a_table():
    "`render_docs.docment_markdown` (what show_doc shows in `make docs`): no comments in the signature, a table."
    def f(a:int, # the first, see `g`
          b:str|None=None, # with a | bar and `x|y`
          *args, c='x', **kw)->int: # the sum
        "Add things."
    md = render_docs.docment_markdown(f)
    sig = md.split('```python\n', 1)[1].split('\n```', 1)[0]
    assert sig == "def f(a:int, b:str | None=None, *args, c='x', **kw)->int:", sig
    rows = [l for l in md.splitlines() if l.startswith('| <code>') or l.startswith('| **Returns**')]
    assert [re.sub(r'<[^>]+>', '', r.split(' | ')[0][2:]) for r in rows] == ['a', 'b', '*args', 'c', '**kw', '**Returns**']
    assert all(len(re.findall(r'(?<!\\)\|', r)) == 5 for r in rows), rows   # a `|` in a cell does not split it
    assert rows[0].endswith('| the first, see `g` |') and rows[-1].endswith('| the sum |')
    def nodoc(a, b=1): "No docments."
    assert '<table' not in md and '|' not in render_docs.docment_markdown(nodoc).split('```')[-1]
    linked = render_docs.link_markdown("```python\ndef f(x): # `g`\n```\n| x | `g` |\n", lambda l: l.replace('`g`', '[`g`](p.html#g)'))
    assert linked == "```python\ndef f(x): # `g`\n```\n| x | [`g`](p.html#g) |\n"


def test_docments_render_as_tables(site):
    "No page shows markdown links inside code; `prepare` and `create_data_loaders` have a full parameter table."
    pages = {p.name: p.read_text(encoding='utf-8') for p in site.glob('*.html')}
    raw = {n: raw_markdown_in_code(h) for n, h in pages.items()}
    raw = {n: r for n, r in raw.items() if r}
    assert not raw, f"{sum(map(len, raw.values()))} markdown links inside code: " + '; '.join(f"{n}: {r[:3]}" for n, r in raw.items())
    from bangla_data.pipeline import prepare
    from bangla_data.loaders import create_data_loaders
    for page, fn in [('pipeline.html', prepare), ('loaders.html', create_data_loaders)]:
        name = fn.__name__
        h = pages[page]
        assert signature_comments(h, name) == [], f"{page}: docments still inside the signature of {name}"
        rows = param_table(h, name)
        assert rows is not None, f"{page}: no parameter table under {name}"
        params = list(inspect.signature(fn).parameters)
        assert [r for r in rows if r != 'Returns'] == params, f"{page}: table rows of {name} != its parameters"
        assert all(rows[p] for p in params if p in ('seed', 'batch_size', 'cache_dir')), rows
    assert 'href="store.html#default_cache_dir"' in param_table(pages['pipeline.html'], 'prepare')['cache_dir']


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
