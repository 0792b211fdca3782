"""The package's layout rules (issues 11 and 20): no module uses another module's `_`-prefixed names, the modules import
each other without a cycle (imports inside functions count), no function is longer than 60 lines, the public API is
small, and `import bangla_data` / `bangla-data --help` / `bangla-data cache ls` import none of the heavy libraries."""
import ast, json, os, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / 'bangla_data'
HEAVY = ('torch', 'transformers', 'sklearn', 'matplotlib')


def _modules():
    return sorted(p for p in PKG.glob('*.py') if p.name != '_modidx.py')


def cross_module_private_names(path: Path) -> list:
    "Every `_name` that `path` imports from, or reads/sets on, another bangla_data module."
    tree, me = ast.parse(path.read_text(encoding='utf-8')), path.stem
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            target = mod.split('.')[-1] if (node.level or mod.startswith('bangla_data')) else None
            if target is None: continue
            if mod == 'bangla_data' or (node.level and not mod):   # `from bangla_data import dataset`
                for a in node.names: aliases[a.asname or a.name] = a.name
                continue
            found += [f"from {mod} import {a.name}" for a in node.names if a.name.startswith('_') and target != me]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith('bangla_data.'): aliases[a.asname or a.name] = a.name.split('.')[-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith('_') and not node.attr.startswith('__'):
            base = node.value
            name = base.id if isinstance(base, ast.Name) else ast.unparse(base) if isinstance(base, ast.Attribute) else None
            if name in aliases and aliases[name] != me: found.append(f"{name}.{node.attr}")
    return found


def test_no_private_names_across_modules():
    bad = {p.name: cross_module_private_names(p) for p in _modules()}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"modules use other modules' private names: {bad}"


def test_the_checker_finds_them(tmp_path):
    "The check above can fail: it flags each way of reaching into another module."
    f = tmp_path / 'loaders.py'
    f.write_text("from .dataset import _ArrayBatch, ok\nfrom bangla_data.caching import _key\n"
                 "import bangla_data.dataset as ds\nds._SEND_ARRAYS = True\nfrom bangla_data import dataset\nx = dataset._x\n"
                 "from .loaders import _mine\n")
    assert cross_module_private_names(f) == ['from dataset import _ArrayBatch', 'from bangla_data.caching import _key',
                                             'ds._SEND_ARRAYS', 'dataset._x']


def imported_modules(path: Path, modules: set) -> set:
    "The modules of `modules` (bangla_data's, by name) that `path` imports anywhere: at the top or inside a function."
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        if isinstance(node, ast.ImportFrom):
            parts = (node.module or '').split('.') if node.module else []
            if not node.level:
                if not parts or parts[0] != 'bangla_data': continue   # another package
                parts = parts[1:]
            if parts: found.add(parts[0])                             # `from .x import y`, `from bangla_data.x import y`
            else: found |= {a.name for a in node.names if a.name in modules}   # `from . import x`, `from bangla_data import x`
        elif isinstance(node, ast.Import):
            found |= {a.name.split('.')[1] for a in node.names if a.name.startswith('bangla_data.')}   # `import bangla_data.x`
    return (found & modules) - {path.stem}


def import_graph(paths) -> dict:
    "Module name -> the set of modules it imports, for the modules in `paths`."
    modules = {p.stem for p in paths}
    return {p.stem: imported_modules(p, modules) for p in paths}


def find_cycle(graph: dict) -> list:
    "One import cycle of `graph` as `[a, b, ..., a]`, or `[]` if it has none (a depth-first search)."
    state, stack = {}, []          # state: 1 while a module is on the stack, 2 once all it imports is done
    def visit(m):
        state[m] = 1; stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1: return stack[stack.index(d):] + [d]
            if d not in state:
                cycle = visit(d)
                if cycle: return cycle
        state[m] = 2; stack.pop()
        return []
    for m in sorted(graph):
        if m not in state:
            cycle = visit(m)
            if cycle: return cycle
    return []


def test_no_import_cycle():
    "bangla_data's modules import each other in one direction only, counting the imports inside functions."
    graph = import_graph(_modules())
    assert 'loading' in graph['sample'] and 'sample' not in graph['loading'] | graph['tokenizer'], \
        "`sample` sits above loading and tokenizer: it imports them, they never import it"
    cycle = find_cycle(graph)
    assert not cycle, f"bangla_data's modules import each other in a cycle: {' -> '.join(cycle)}"


def test_the_cycle_checker_finds_them(tmp_path):
    "The check above can fail: every way of importing a module counts, inside a function too."
    files = {'a.py': "from .b import x\n",
             'b.py': "def f():\n    from bangla_data.c import y\n",
             'c.py': "import os\nimport bangla_data.d as dd\n",
             'd.py': "from bangla_data import a, __version__\nfrom . import env\n",
             'env.py': "from bangla_data import __version__\nfrom .env import _me\nimport numpy.linalg\n"}
    for name, src in files.items(): (tmp_path / name).write_text(src)
    paths = sorted(tmp_path.glob('*.py'))
    graph = import_graph(paths)
    assert graph == {'a': {'b'}, 'b': {'c'}, 'c': {'d'}, 'd': {'a', 'env'}, 'env': set()}
    assert find_cycle(graph) == ['a', 'b', 'c', 'd', 'a']
    (tmp_path / 'd.py').write_text("from bangla_data import env\n")
    assert find_cycle(import_graph(paths)) == []
    assert find_cycle({'x': {'y'}, 'y': {'z'}, 'z': {'y'}}) == ['y', 'z', 'y']


MAX_FUNCTION_LINES = 60


def long_functions(path: Path, limit: int = MAX_FUNCTION_LINES) -> list:
    "`file:line name (N lines)` for each function or method in `path` longer than `limit` lines (decorators excluded)."
    found = []
    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = child.end_lineno - child.lineno + 1     # `lineno` is the `def` line: decorators do not count
                if n > limit: found.append(f"{path.name}:{child.lineno} {prefix}{child.name} ({n} lines)")
                walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef): walk(child, f"{prefix}{child.name}.")
            else: walk(child, prefix)
    walk(ast.parse(path.read_text(encoding='utf-8')), '')
    return found


def test_no_long_functions():
    "No function or method is longer than 60 lines: a long one is split into named, tested steps."
    long = [f for p in _modules() for f in long_functions(p)]
    assert not long, f"functions longer than {MAX_FUNCTION_LINES} lines (split them into named steps): {long}"


def test_the_length_checker_finds_them(tmp_path):
    "The check above can fail: it counts functions, methods and nested functions, from `def` to the last line."
    body = lambda n, indent: ''.join(f"{' ' * indent}x{i} = {i}\n" for i in range(n))
    f = tmp_path / 'm.py'
    f.write_text("@decorator\n@another\ndef fits():\n" + body(59, 4)                  # 60 lines with its `def`
                 + "class C:\n    async def method(self):\n" + body(60, 8)          # 61
                 + "def outer():\n    def inner():\n" + body(60, 8))                 # 62 and 61
    assert long_functions(f) == ['m.py:64 C.method (61 lines)', 'm.py:125 outer (62 lines)',
                                 'm.py:126 outer.inner (61 lines)']
    assert long_functions(f, limit=62) == []


def test_public_api_is_small_and_complete():
    import bangla_data
    assert len(bangla_data.__all__) <= 30, len(bangla_data.__all__)
    design = ['LABEL_COLUMNS', 'load_and_preprocess_data', 'clean_bangla_text', 'get_cache_filename',
              'get_or_create_tokenized_dataset', 'IndexedDataset', 'prepare_kfold_splits', 'calculate_class_weights',
              'create_data_loaders']
    assert set(design) <= set(bangla_data.__all__)
    for name in bangla_data.__all__: assert getattr(bangla_data, name) is not None, name
    with pytest.raises(AttributeError): bangla_data.no_such_name


def _imported_after(code: str) -> list:
    env = {k: v for k, v in os.environ.items() if k != 'TOKENIZERS_PARALLELISM'}
    out = subprocess.run([sys.executable, '-c', code + f"\nimport sys, json; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"],
                         capture_output=True, text=True, env=env, cwd=ROOT, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_import_is_light():
    assert _imported_after("import bangla_data, os; assert os.environ['TOKENIZERS_PARALLELISM'] == 'false'") == []
    assert _imported_after("import bangla_data; bangla_data.SAMPLE_PATH; bangla_data.read_table") == []


@pytest.mark.parametrize('argv', [['--help'], ['cache', 'ls'], ['prepare', '--help'], ['cache', 'ls', '--json']])
def test_cli_help_and_cache_ls_are_light(argv, tmp_path):
    code = (f"import sys; sys.argv = ['bangla-data'] + {argv!r} + (['--cache-dir', {str(tmp_path)!r}] if 'ls' in {argv!r} else [])\n"
            "from bangla_data.cli import main\n"
            "try: main()\nexcept SystemExit: pass")
    assert _imported_after(code) == []
