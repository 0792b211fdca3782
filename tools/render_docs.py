#!/usr/bin/env python
"""Render the notebooks in `nbs/` to a static HTML site in `_docs/` without Quarto (`make docs`).

For every `nbs/index.ipynb` and `nbs/NN_*.ipynb`:
1. nbdev's own docs processors prepare the notebook (title cell -> page title, `show_doc` cells added after
   exported definitions that lack one);
2. the notebook is EXECUTED in a fresh Jupyter kernel (this venv's Python, working directory `nbs/`, a
   per-notebook timeout) so `show_doc` output and plots are real; cells marked `#| notest`, `#| slow` or
   `#| eval: false` are shown but not run, as in `nbdev_test`; `show_doc` shows a signature without the docment
   comments and the parameters in a table under it (`install_docment_tables`);
3. the rest of nbdev's processors run as `nbdev_proc_nbs` does for Quarto (`#| hide`/`#| export` cells removed,
   `show_doc` cells shown as output only, names linked to their docs outside code blocks);
4. nbconvert turns it into HTML, embedded in a page with a sidebar of all sections and one stylesheet.

The site is built in a temporary directory and swapped in only when every notebook succeeded; any error in any
notebook is printed with its notebook and cell, and the exit code is 1 (the previous `_docs/` stays as it was).
Quarto users can still run `nbdev_docs` (it reads `nbs/_quarto.yml` and `nbs/nbdev.yml`, untouched here).
"""
import argparse, configparser, html, json, os, re, shutil, sys, tempfile, time, traceback
import concurrent.futures as cf
import multiprocessing as mp
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP_EXEC = ('notest', 'slow')  # nbdev_test's tst_flags: shown, not executed
_re_dir = re.compile(r'^\s*#\|\s*(.*?)\s*$')


def settings():
    cp = configparser.ConfigParser()
    cp.read(ROOT / 'settings.ini')
    return cp['DEFAULT']


def find_notebooks(nbs: Path):
    "index.ipynb first, then the numbered notebooks in order."
    idx = [nbs / 'index.ipynb'] if (nbs / 'index.ipynb').exists() else []
    return idx + sorted(p for p in nbs.glob('*.ipynb') if re.match(r'^\d', p.name))


def page_name(nb: Path) -> str:
    "The page nbdev's doc links expect (`00_env.ipynb` -> `env.html`), as Quarto would name it."
    from nbdev.doclinks import _nbpath2html
    return _nbpath2html(nb).name


def nb_title(nb: Path):
    "Title and summary from the notebook's first `# Title` / `> summary` markdown cell."
    cells = json.loads(nb.read_text(encoding='utf-8'))['cells']
    for c in cells:
        if c['cell_type'] != 'markdown': continue
        src = ''.join(c['source'])
        m = re.search(r'^#\s+(\S.*?)\s*$', src, flags=re.M)
        if m:
            d = re.search(r'^>\s+(\S.*?)\s*$', src, flags=re.M)
            return m.group(1), (d.group(1) if d else '')
    return nb.stem, ''


# ---------------------------------------------------------------- one notebook (runs in a worker process)

def _directives(src: str):
    "Leading `#| key: value` / `#| flag args` lines of a code cell as a dict, and the source without them."
    d, lines, i = {}, src.splitlines(), 0
    while i < len(lines) and (_re_dir.match(lines[i]) or not lines[i].strip()):
        m = _re_dir.match(lines[i])
        if m and m.group(1):
            key, _, rest = m.group(1).partition(' ')
            d[key.rstrip(':')] = rest.strip()
        i += 1
    return d, '\n'.join(lines[i:])


SETUP = """#| hide
import warnings as _rd_warnings, sys as _rd_sys
_rd_warnings.filterwarnings('ignore', message='IProgress not found')  # tqdm.auto in a kernel without ipywidgets
from nbdev.showdoc import show_doc
_rd_sys.path.insert(0, %r)
import render_docs as _rd
_rd.install_docment_tables()  # show_doc: signature without comments, docments in a parameter table
_rd_sys.path.remove(%r)
try:
    from bangla_data.plotting import use_bangla_font as _rd_use_bangla_font
    _rd_use_bangla_font()
except ImportError: pass
del _rd_warnings, _rd_sys, _rd
""" % ((str(Path(__file__).resolve().parent),) * 2)

_re_quarto_attr = re.compile(r'(\]\([^)\s]*\))\{[^}\n]*\}')  # [source](url){target="_blank" ...}
_re_fence_div = re.compile(r'^\s*:::.*$\n?', flags=re.M)


_ANSI = re.compile(r'\x1B(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])')


def _clean_md(s: str) -> str:
    return _re_fence_div.sub('', _re_quarto_attr.sub(r'\1', s))


# ---------------------------------------------------------------- show_doc: docments as a table (runs in the kernel)
# fastcore 1.14's `MarkdownRenderer` (behind nbdev 2.4's `show_doc`) writes the docments as `# comments` inside the
# ```python signature block, and nbdev's `add_links` then turns every `name` in them into `[`name`](page.html#name)`,
# line by line, fences or not: raw markdown inside code. Here `show_doc` shows the signature without comments and
# the parameters (name, type, default, docment) in a markdown table under it, as nbdev's `DocmentTbl` used to,
# and `add_links_outside_code` links names only outside fenced code.

def _anno_str(a) -> str:
    "An annotation as a reader writes it: `str | None`, `Optional[DataFrame]`, `Prepared` (no module paths)."
    import inspect
    if a is inspect.Parameter.empty: return ''
    if isinstance(a, str): return a
    if isinstance(a, type) and not getattr(a, '__args__', None): return a.__qualname__
    s = inspect.formatannotation(a)
    return re.sub(r'\b[a-z_][\w]*\.(?=[A-Za-z_])', '', s)  # typing.Optional[pandas.core.frame.DataFrame] -> Optional[DataFrame]


def _default_str(d) -> str:
    import inspect
    if d is inspect.Parameter.empty: return ''
    if inspect.isfunction(d) or inspect.isclass(d) or inspect.isbuiltin(d): return d.__qualname__
    return repr(d)


def _params(sym):
    "(signature, parameters without `self`) of `sym`, with real annotations (not types guessed from defaults)."
    import inspect
    try: sig = inspect.signature(sym, eval_str=True)
    except Exception: sig = inspect.signature(sym)  # an annotation that does not evaluate stays a string
    ps = [p for p in sig.parameters.values() if not (p.name == 'self' and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))]
    return sig, ps


def signature_text(sym, name: str, maxline: int = 110) -> str:
    "`def name(a:int=1, *, b=None)->X:` wrapped at `maxline`, without docment comments."
    import inspect
    sig, ps = _params(sym)
    parts, kw_star = [], False
    for i, p in enumerate(ps):
        if p.kind == p.KEYWORD_ONLY and not kw_star and not any(q.kind == q.VAR_POSITIONAL for q in ps): parts.append('*'); kw_star = True
        pre = '*' if p.kind == p.VAR_POSITIONAL else '**' if p.kind == p.VAR_KEYWORD else ''
        a, d = _anno_str(p.annotation), _default_str(p.default)
        parts.append(pre + p.name + (f':{a}' if a else '') + (f'={d}' if d or p.default is not p.empty else ''))
        if p.kind == p.POSITIONAL_ONLY and (i + 1 == len(ps) or ps[i + 1].kind != p.POSITIONAL_ONLY): parts.append('/')
    ret = '' if inspect.isclass(sym) else _anno_str(sig.return_annotation)
    prefix = 'class' if inspect.isclass(sym) else 'async def' if inspect.iscoroutinefunction(sym) else 'def'
    tail = f")->{ret}:" if ret else '):'
    one = f"{prefix} {name}({', '.join(parts)}{tail}"
    if len(one) <= maxline: return one
    lines, cur = [], ''
    for x in parts:
        if cur and len(cur) + len(x) + 2 > maxline - 4: lines.append(cur + ','); cur = x
        else: cur = f"{cur}, {x}" if cur else x
    if cur: lines.append(cur)
    return f"{prefix} {name}(\n    " + '\n    '.join(lines) + f"\n{tail}"


def _cell(s: str, code=False) -> str:
    "Text for a markdown table cell: `|` cannot split it, newlines become `<br>`; `code` cells are literal."
    if code: return '<code>' + html.escape(s, quote=False).replace('|', '&#124;') + '</code>' if s else ''
    def _span(m):  # mistune does not unescape `\|` inside a code span: write such a span as HTML
        return '<code>' + html.escape(m.group(1), quote=False).replace('|', '&#124;') + '</code>' if '|' in m.group(1) else m.group(0)
    s = re.sub(r'`([^`\n]+)`', _span, s)
    s = re.sub(r'(?<!\\)\|', r'\\|', s)
    return s.strip().replace('\n', '<br>')


def docment_table(sym) -> str:
    "The markdown table of `sym`'s parameters (name, type, default, docment), '' when none has a docment."
    import inspect
    from fastcore.docments import docments
    try: dm = docments(sym)
    except Exception: return ''
    sig, ps = _params(sym)
    if not any(dm.get(p.name) for p in ps): return ''
    rows = [(('*' if p.kind == p.VAR_POSITIONAL else '**' if p.kind == p.VAR_KEYWORD else '') + p.name,
             _anno_str(p.annotation), _default_str(p.default), dm.get(p.name) or '') for p in ps]
    ret_anno = '' if inspect.isclass(sym) else _anno_str(sig.return_annotation)
    if ret_anno or dm.get('return'): rows.append(('**Returns**', ret_anno, '', dm.get('return') or ''))
    has_t, has_d = any(r[1] for r in rows), any(r[2] for r in rows)
    hdr = ['  '] + (['**Type**'] if has_t else []) + (['**Default**'] if has_d else []) + ['**Details**']
    out = ['| ' + ' | '.join(hdr) + ' |', '| ' + ' | '.join('-' * len(h) for h in hdr) + ' |']
    for nm, t, d, doc in rows:
        cells = [nm if nm == '**Returns**' else _cell(nm, code=True)]
        if has_t: cells.append(_cell(t, code=True))
        if has_d: cells.append(_cell(d, code=True))
        cells.append(_cell(doc))
        out.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(out)


def docment_markdown(sym, name=None, title_level=3, source=None) -> str:
    "What `show_doc(sym)` shows: rule, source link, heading, signature (no comments), docstring, parameter table."
    from fastcore.docments import qual_name, parse_docstring
    nm = name or qual_name(sym)
    doc = '---\n\n'
    if source: doc += f'[source]({source}){{target="_blank" style="float:right; font-size:smaller"}}\n\n'
    sig_nm = getattr(sym, '__name__', None) or nm.rsplit('.', 1)[-1]  # `def save_splits(...)` under `Prepared.save_splits`
    doc += f"{'#' * title_level} {nm}\n\n```python\n{signature_text(sym, sig_nm)}\n```\n"
    npdoc = parse_docstring(sym)
    docs = '\n\n'.join([npdoc['Summary'], npdoc['Extended']]).strip()
    if docs: doc += '\n' + re.sub(r'^(\s*)(.+)', r'\1*\2*', docs, count=1) + '\n'
    tbl = docment_table(sym)
    if tbl: doc += '\n' + tbl + '\n'
    return doc


def install_docment_tables():
    "In the notebook's kernel: nbdev's `show_doc` renders with `docment_markdown` (falls back to nbdev's own)."
    import nbdev.showdoc as sd
    from nbdev.doclinks import NbdevLookup
    base = sd.BasicMarkdownRenderer
    if getattr(base, '_docment_tables', False): return
    class DocmentTableRenderer(base):
        "nbdev's `show_doc` markdown, with the docments in a table under a comment-free signature"
        _docment_tables = True
        def _repr_markdown_(self):
            if not callable(self.sym) or self.sig is None: return super()._repr_markdown_()
            try: return docment_markdown(self.sym, self.nm, self.title_level, NbdevLookup().code(self.fn))
            except Exception: return super()._repr_markdown_()
    sd.BasicMarkdownRenderer = DocmentTableRenderer


def link_markdown(md: str, link_line) -> str:
    "Apply `link_line` to the lines of `md` outside fenced code blocks (``` or ~~~)."
    out, fence = [], None
    for l in md.splitlines(keepends=True):
        m = re.match(r'^\s*(`{3,}|~{3,})', l)
        if m and (fence is None or m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence)):
            fence = m.group(1) if fence is None else None
        elif fence is None: l = link_line(l)
        out.append(l)
    return ''.join(out)


def add_links_outside_code(cell):
    "nbdev's `add_links`, except that names inside fenced code in markdown outputs stay plain code."
    from nbdev.doclinks import NbdevLookup
    nl = NbdevLookup()
    if cell.cell_type == 'markdown': cell.source = nl.linkify(cell.source)
    for o in cell.get('outputs', []):
        md = o.get('data', {}).get('text/markdown') if hasattr(o, 'get') else None
        if md is None: continue
        o['data']['text/markdown'] = link_markdown(md if isinstance(md, str) else ''.join(md), nl.link_line)


def render_notebook(src: str, timeout: int):
    "Execute and convert one notebook; return (body_html, frontmatter, seconds) or raise with a clear message."
    import nbformat
    from execnb.nbio import read_nb, nb2dict, dict2nb, mk_cell
    from nbdev.process import NBProcessor
    from nbdev.frontmatter import FrontmatterProc
    from nbdev import processors as P
    from nbclient import NotebookClient
    from jupyter_client.manager import KernelManager
    from nbclient.exceptions import CellExecutionError
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    t0 = time.time()
    src = Path(src)
    # 1. nbdev's processors that must run before execution (keep the directives in the source)
    nb = read_nb(src)
    pre = NBProcessor(nb=nb, procs=[FrontmatterProc, P.populate_language, P.add_show_docs], rm_directives=False)
    pre.process()
    fm = dict(getattr(nb, 'frontmatter_', {}) or {})
    nb.cells.insert(0, mk_cell(SETUP))
    d = nb2dict(nb)
    skipped = {}
    for i, c in enumerate(d['cells']):
        if isinstance(c.get('source'), list): c['source'] = ''.join(c['source'])
        c.setdefault('metadata', {})
        if c['cell_type'] == 'code':
            c['outputs'], c['execution_count'] = [], None
            dirs, _ = _directives(c['source'])
            if any(k in dirs for k in SKIP_EXEC) or dirs.get('eval', '').lower() == 'false':
                skipped[i], c['source'] = c['source'], ''
    nbf = nbformat.from_dict(d)
    nbformat.validator.normalize(nbf)

    # 2. execute in a fresh kernel
    env_backend = os.environ.get('MPLBACKEND')
    os.environ['MPLBACKEND'] = 'module://matplotlib_inline.backend_inline'  # CI exports MPLBACKEND=Agg: no inline plots
    ipc_dir, km = tempfile.mkdtemp(prefix='render_docs_'), None
    try:
        # a local IPC transport (sockets in a private temp dir) instead of TCP ports on localhost
        km = KernelManager(kernel_name='python3', transport='ipc', ip=os.path.join(ipc_dir, 'kernel'))
        client = NotebookClient(nbf, km=km, timeout=timeout, kernel_name='python3', allow_errors=False,
                                resources={'metadata': {'path': str(src.parent)}})
        client.execute()
    except CellExecutionError as e:
        raise RuntimeError(f"{src.name}: a cell raised an error\n{_ANSI.sub('', str(e))}") from None
    except Exception as e:  # timeouts, dead kernels
        raise RuntimeError(f"{src.name}: execution failed: {type(e).__name__}: {e}") from None
    finally:
        if km is not None and km.has_kernel:  # nbclient leaves a kernel it did not create running
            try: km.shutdown_kernel(now=False)
            except Exception: km.shutdown_kernel(now=True)
        shutil.rmtree(ipc_dir, ignore_errors=True)
        if env_backend is None: os.environ.pop('MPLBACKEND', None)
        else: os.environ['MPLBACKEND'] = env_backend
    for i, s in skipped.items(): nbf.cells[i].source = s

    # 3. the rest of nbdev's docs processors, as nbdev_proc_nbs runs them for Quarto
    d = json.loads(nbformat.writes(nbf))
    for c in d['cells']:
        if c['cell_type'] == 'raw': c['source'] = ''  # frontmatter: already in fm
    nb2 = dict2nb(d)
    nb2['path_'] = str(src)
    post = [P.strip_ansi, P.hide_line, P.filter_stream_, P.rm_header_dash, P.clean_show_doc, P.rm_export,
            P.ai_magics, P.clean_magics, P.hide_, add_links_outside_code, P.strip_hidden_metadata]
    NBProcessor(nb=nb2, procs=post).process()

    # 4. HTML: honour the Quarto cell options nbdev relies on, then nbconvert
    cells = []
    for c in nb2dict(nb2)['cells']:
        c['source'] = ''.join(c.get('source', []))
        if c['cell_type'] == 'raw': continue
        if c['cell_type'] == 'markdown':
            c['source'] = _clean_md(c['source'])
            if c['source'].strip(): cells.append(c)
            continue
        dirs, body = _directives(c['source'])
        if dirs.get('include', '').lower() == 'false': continue
        c['source'] = body
        if dirs.get('output', '').lower() == 'false': c['outputs'] = []
        tags = set(c['metadata'].get('tags', []))
        if dirs.get('echo', '').lower() == 'false' or not body.strip(): tags.add('remove_input')
        c['metadata']['tags'] = sorted(tags)
        for o in c.get('outputs', []):
            md = o.get('data', {}).get('text/markdown')
            if md is not None: o['data']['text/markdown'] = _clean_md(''.join(md))
        if body.strip() or c.get('outputs'): cells.append(c)
    d = nb2dict(nb2)
    d['cells'] = cells
    nbf = nbformat.reads(json.dumps(d), as_version=4)  # (re)joins multi-line strings of outputs
    exp = HTMLExporter(template_name='basic', exclude_input_prompt=True, exclude_output_prompt=True)
    exp.register_preprocessor(TagRemovePreprocessor(remove_input_tags={'remove_input'}, enabled=True), enabled=True)
    body, _ = exp.from_notebook_node(nbf)
    return body, fm, time.time() - t0


def fix_method_links(site: Path):
    "A link to `Class.method` without its own show_doc points at the class's documentation instead."
    pages = {p.name: p.read_text(encoding='utf-8') for p in site.glob('*.html')}
    ids = {n: set(re.findall(r' id="([^"]+)"', h)) for n, h in pages.items()}
    def _fix(m, name):
        target, frag = m.group(1) or name, m.group(2)
        if target not in ids or frag in ids[target] or '.' not in frag: return m.group(0)
        cls = frag.rsplit('.', 1)[0]
        return f'href="{m.group(1)}#{cls}"' if cls in ids[target] else m.group(0)
    for name, h in pages.items():
        new = re.sub(r'href="([\w.-]*\.html)?#([^"]+)"', lambda m: _fix(m, name), h)
        if new != h: (site / name).write_text(new, encoding='utf-8')


def _light_lib_import(cfg):
    "Let nbdev's link lookup read `<lib>/_modidx.py` without importing the whole library (torch...) in this worker."
    import types
    lib = cfg.get('lib_name')
    if lib and lib not in sys.modules and (ROOT / cfg.get('lib_path', lib) / '_modidx.py').exists():
        pkg = types.ModuleType(lib)
        pkg.__path__ = [str(ROOT / cfg.get('lib_path', lib))]
        sys.modules[lib] = pkg  # a bare package: `import lib._modidx` runs only that file


def _worker(args):
    src, timeout = args
    _light_lib_import(settings())
    try: return src, render_notebook(src, timeout), None
    except Exception as e:
        msg = str(e) if isinstance(e, RuntimeError) else ''.join(traceback.format_exception(e))
        return src, None, msg


# ---------------------------------------------------------------- site

def _slug(s: str) -> str:
    return re.sub(r'[^\w\- ]', '', html.unescape(re.sub(r'<[^>]+>', '', s))).strip().lower().replace(' ', '-')


def postprocess(body: str, cfg, pages=None) -> str:
    "Relative links to our own pages, ids on headings (for `#name` links), no Quarto leftovers."
    base = (cfg.get('doc_host', '') + cfg.get('doc_baseurl', '')).rstrip('/')
    if base: body = body.replace(base + '/', '')
    for nb, page in (pages or {}).items():  # [see](05_kfold.ipynb#x) -> kfold.html#x, as Quarto does
        body = re.sub(rf'href="(?:\./)?{re.escape(nb)}(?=[#"])', f'href="{page}', body)
    def _hid(m):  # Quarto-style lower-case ids, so nbdev's links (`env.html#bangladataerror`) land
        n, attrs, inner = m.groups()
        idm = re.search(r' id="([^"]*)"', attrs)
        if idm is None: return f'<h{n} id="{_slug(inner)}"{attrs}>{inner}</h{n}>'
        old, new = idm.group(1), idm.group(1).lower()
        inner = inner.replace(f'href="#{old}"', f'href="#{new}"')
        attrs = attrs.replace(idm.group(0), ' id="%s"' % new)
        return f'<h{n}{attrs}>{inner}</h{n}>'
    body = re.sub(r'<h([1-6])([^>]*)>(.*?)</h\1>', _hid, body, flags=re.S)
    body = body.replace('<a href="https://github.com', '<a target="_blank" rel="noopener" href="https://github.com')
    return body


CSS = r"""
:root { --sidebar: 16rem; --fg: #212529; --muted: #6c757d; --accent: #2780e3; --border: #dee2e6; --code-bg: #f8f9fa; }
* { box-sizing: border-box; }
html { font-size: 16px; }
body { margin: 0; color: var(--fg); line-height: 1.55;
       font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans Bengali", "Lohit Bengali", "Mukti", "Nirmala UI", "Vrinda", sans-serif, "Noto Color Emoji"; }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
nav.sidebar { position: fixed; top: 0; left: 0; bottom: 0; width: var(--sidebar); overflow-y: auto;
              background: #f7f8fa; border-right: 1px solid var(--border); padding: 1.2rem 0.9rem; font-size: 0.92rem; }
nav.sidebar .brand { display: block; font-weight: 700; font-size: 1.15rem; color: var(--fg); margin-bottom: 0.2rem; }
nav.sidebar .tagline { color: var(--muted); font-size: 0.8rem; margin: 0 0 1rem 0; }
nav.sidebar ol { list-style: none; margin: 0; padding: 0; }
nav.sidebar li a { display: flex; padding: 0.28rem 0.55rem; border-radius: 4px; color: var(--fg); }
nav.sidebar li a .num { color: var(--muted); flex: 0 0 1.7rem; }
nav.sidebar li a:hover { background: #e9ecef; text-decoration: none; }
nav.sidebar li a.active { background: var(--accent); color: #fff; } nav.sidebar li a.active .num { color: #dbe9fb; }
nav.sidebar li a code { background: none; color: inherit; padding: 0; font-size: 0.9em; }
main.content { margin-left: var(--sidebar); padding: 1.5rem 2.5rem 4rem 2.5rem; max-width: calc(var(--sidebar) + 60rem); }
header.page h1.title { margin: 0.2rem 0 0.3rem 0; font-size: 2.1rem; }
header.page .description { color: var(--muted); font-size: 1.1rem; margin-top: 0; }
header.page { border-bottom: 1px solid var(--border); margin-bottom: 1.2rem; padding-bottom: 0.6rem; }
h2 { margin-top: 2rem; border-bottom: 1px solid #eee; padding-bottom: 0.2rem; } h3 { margin-top: 1.4rem; }
.anchor-link { visibility: hidden; margin-left: 0.3rem; font-weight: normal; }
h1:hover .anchor-link, h2:hover .anchor-link, h3:hover .anchor-link, h4:hover .anchor-link { visibility: visible; }
pre { background: var(--code-bg); padding: 0.7rem 0.9rem; border-radius: 4px; overflow-x: auto; font-size: 0.86rem; line-height: 1.4; margin: 0.4rem 0; }
code { font-family: SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", "Lohit Bengali", monospace; font-size: 0.88em; }
p code, li code, td code, h1 code { background: var(--code-bg); padding: 0.05rem 0.25rem; border-radius: 3px; color: #9a1e5a; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid var(--border); padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
thead th { background: #f1f3f5; }
.cell { margin-bottom: 0.9rem; }
.input_area pre, .input .highlight pre { border-left: 3px solid #cfe2ff; }
.output_area pre { background: none; border-left: 2px solid lightsalmon; border-radius: 0; margin-left: 0.8rem; padding: 0.3rem 0.8rem; }
.output_stderr pre { border-left-color: #f0ad4e; background: #fff8e6; }
.output_png img, .output_jpeg img, .output_svg svg { max-width: 100%; height: auto; margin: 0.3rem 0 0.3rem 0.8rem; }
.output_html { margin-left: 0.8rem; overflow-x: auto; }
.output_markdown { margin: 0.2rem 0 1rem 0; }
.output_markdown hr { border: 0; border-top: 1px solid var(--border); margin: 1.6rem 0 0 0; }
.output_markdown p:has(> a[href*="github.com"]) { float: right; margin: 0.3rem 0 0 0; font-size: 0.85rem; }
.output_markdown h3, .output_markdown h4 { margin-top: 0.6rem; }
.output_markdown em { color: #343a40; }
blockquote { color: var(--muted); border-left: 3px solid var(--border); margin: 0.8rem 0; padding: 0.1rem 0.9rem; }
footer { margin-top: 3rem; color: var(--muted); font-size: 0.8rem; border-top: 1px solid var(--border); padding-top: 0.6rem; }
@media (max-width: 800px) { nav.sidebar { position: static; width: auto; } main.content { margin-left: 0; padding: 1rem; } }
"""


def _inline(s: str) -> str:
    "Escape a title for HTML, keeping `code` spans."
    return re.sub(r'`([^`]+)`', r'<code>\1</code>', html.escape(s))


def page(title, desc, body, nav, cfg, fname):
    items = []
    for href, num, t in nav:
        cls = ' class="active"' if href == fname else ''
        items.append(f'<li><a href="{href}"{cls}><span class="num">{html.escape(num)}</span><span>{_inline(t)}</span></a></li>')
    lib = html.escape(cfg.get('lib_name', 'docs'))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title.replace('`', ''))} – {lib}</title>
<meta name="description" content="{html.escape(desc)}">
<link rel="stylesheet" href="site.css">
</head><body>
<nav class="sidebar" aria-label="Sections">
<a class="brand" href="index.html">{lib}</a>
<p class="tagline">{html.escape(cfg.get('description', ''))}</p>
<ol>
{chr(10).join(items)}
</ol>
</nav>
<main class="content">
<header class="page"><h1 class="title">{_inline(title)}</h1>
{f'<p class="description">{_inline(desc)}</p>' if desc else ''}</header>
{body}
<footer>Generated from <code>nbs/</code> by <code>tools/render_docs.py</code> (<code>make docs</code>).</footer>
</main></body></html>
"""


def build(nbs: Path, out: Path, timeout: int, workers: int, only=None, keep_going=False) -> int:
    cfg = settings()
    nbs_list = find_notebooks(nbs)
    if not nbs_list:
        print(f"render_docs: no notebooks in {nbs}", file=sys.stderr); return 1
    nav = []
    for nb in nbs_list:
        t, _ = nb_title(nb)
        num = '' if nb.stem == 'index' else re.match(r'^(\d+)', nb.stem).group(1)
        nav.append((page_name(nb), num, t if nb.stem != 'index' else 'Overview'))
    todo = [nb for nb in nbs_list if not only or any(o in nb.name for o in only)]
    try: last = json.loads((out / 'build.json').read_text())['seconds']
    except (OSError, ValueError, KeyError): last = {}
    todo.sort(key=lambda nb: -last.get(nb.name, 1e9))  # slowest first (as last time): shortest wall time on 2 workers
    t0 = time.time()
    tmp = out.with_name(out.name + '.tmp')
    shutil.rmtree(tmp, ignore_errors=True)
    if only and out.exists(): shutil.copytree(out, tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    errors, timings = [], {}
    ctx = mp.get_context('spawn')
    with cf.ProcessPoolExecutor(max_workers=max(1, min(workers, len(todo))), mp_context=ctx) as ex:
        futs = [ex.submit(_worker, (str(nb), timeout)) for nb in todo]
        for f in cf.as_completed(futs):
            src, res, err = f.result()
            src = Path(src)
            if err:
                errors.append((src, err)); print(f"  FAILED {src.name}", flush=True); continue
            body, fm, secs = res
            timings[src.name] = round(secs, 1)
            title, desc = nb_title(src)
            title, desc = fm.get('title', title), fm.get('description', desc)
            fname = page_name(src)
            html_ = postprocess(body, cfg, {nb.name: page_name(nb) for nb in nbs_list})
            (tmp / fname).write_text(page(title, desc, html_, nav, cfg, fname), encoding='utf-8')
            print(f"  {src.name:28s} -> {fname:22s} {secs:5.1f}s", flush=True)
    for src, err in errors:
        print(f"\n===== render_docs: {src} failed =====\n{err}", file=sys.stderr)
    if errors and not keep_going:
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"\nrender_docs: {len(errors)} of {len(todo)} notebooks failed; {out}/ left unchanged", file=sys.stderr)
        return 1
    fix_method_links(tmp)
    css = CSS
    try:
        from pygments.formatters import HtmlFormatter
        css += '\n' + HtmlFormatter(style='default').get_style_defs('.highlight')
    except ImportError: pass
    (tmp / 'site.css').write_text(css, encoding='utf-8')
    (tmp / '.nojekyll').write_text('')
    manifest = dict(pages=sorted(p.name for p in tmp.glob('*.html')), failed=[s.name for s, _ in errors], notebooks=[n.name for n in nbs_list],
                    seconds={k: v for k, v in {**last, **timings}.items() if k in {n.name for n in nbs_list}},
                    total_seconds=round(time.time() - t0, 1), built=time.strftime('%Y-%m-%dT%H:%M:%S'))
    (tmp / 'build.json').write_text(json.dumps(manifest, indent=1), encoding='utf-8')
    old = out.with_name(out.name + '.old')
    shutil.rmtree(old, ignore_errors=True)
    if out.exists(): out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    if errors:
        print(f"\nrender_docs: {len(errors)} of {len(todo)} notebooks FAILED (pages missing from {out}/)", file=sys.stderr)
        return 1
    print(f"render_docs: {len(todo)} pages in {out}/ ({time.time() - t0:.1f}s)")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    cfg = settings()
    ap.add_argument('--nbs', default=str(ROOT / cfg.get('nbs_path', 'nbs')), help='notebook folder (default: nbs/)')
    ap.add_argument('--out', default=str(ROOT / cfg.get('doc_path', '_docs')), help='output folder (default: _docs/)')
    ap.add_argument('--timeout', type=int, default=300, help='seconds allowed per cell (default: 300)')
    ap.add_argument('--workers', type=int, default=min(2, os.cpu_count() or 1), help='notebooks executed in parallel (default: 2)')
    ap.add_argument('--only', nargs='*', help='re-render only notebooks whose name contains one of these (keeps the other pages)')
    ap.add_argument('--keep-going', action='store_true', help='write the pages that did render even if some failed (still exits 1)')
    a = ap.parse_args(argv)
    os.chdir(ROOT)  # nbdev reads settings.ini from the working directory's parents
    return build(Path(a.nbs), Path(a.out), a.timeout, a.workers, a.only, a.keep_going)


if __name__ == '__main__':
    sys.exit(main())
