"""The package's layout rules (issue 11): no module uses another module's `_`-prefixed names, the public API is small,
and `import bangla_data` / `bangla-data --help` / `bangla-data cache ls` import none of the heavy libraries."""
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
