"""Issue 7, security: nothing read back from disk is unpickled or evaluated, and hostile names cannot write outside
`cache_dir`.

An audit hook (PEP 578) records every file the cache opens and every `pickle.find_class` (which any unpickling of
an object must call). The tests record which paths a hit, a miss, a rebuild, the housekeeping functions and a
loader read; plant a malicious pickle at each of them and at the places a pickle-based cache would look; and show
that the payload never runs and that no unpickling happens at all.
"""
import ast
import csv
import hashlib
import os
import pickle
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

import bangla_data
from bangla_data import clean_bangla_text, load_and_preprocess_data
from bangla_data.cache import get_or_create_tokenized_dataset
from bangla_data.store import (clear_cache, entry_names as _entry_names, get_cache_filename, list_cache_entries,
                               reopen_entry as _reopen)
from bangla_data.tokenize import tokenize_to_data
from bangla_data.sample import sample_tokenizer
from bangla_data.loaders import create_data_loaders
from conftest import ROOT

# ----------------------------------------------------------------------------------------------- audit hook
_AUDIT = {'on': False, 'opened': [], 'unpickled': []}


def _hook(event, args):
    if not _AUDIT['on']: return
    if event == 'open' and isinstance(args[0], (str, bytes, os.PathLike)): _AUDIT['opened'].append(os.fsdecode(args[0]))
    elif event == 'pickle.find_class': _AUDIT['unpickled'].append(f'{args[0]}.{args[1]}')


sys.addaudithook(_hook)   # cannot be removed; it does nothing unless _AUDIT['on']


class _audit:
    def __enter__(self):
        _AUDIT.update(on=True, opened=[], unpickled=[]); return _AUDIT
    def __exit__(self, *exc):
        _AUDIT['on'] = False


class _Payload:
    "Unpickling this runs code that creates the marker file."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


@pytest.fixture(scope='module')
def sample():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        c, y = load_and_preprocess_data(bangla_data.SAMPLE_PATH, verbose=False)
    return c, y, sample_tokenizer()


def _all_operations(c, y, tok, cache):
    "Everything that reads the cache: a lookup (hit, miss or rebuild), another tokenizer name, housekeeping, a worker's reopen, a loader."
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        d = get_or_create_tokenized_dataset(c, y, tok, 64, cache, verbose=False)
        d2 = get_or_create_tokenized_dataset(c, y, tok, 64, cache, verbose=False)
        list_cache_entries(cache)
        if 'path' in d2.manifest: _reopen(d2.manifest['path'])
        train, val = create_data_loaders(d2, np.arange(0, len(c), 2), np.arange(1, len(c), 2), batch_size=64, num_workers=0)
        n = sum(len(b['labels']) for b in train) + sum(len(b['labels']) for b in val)
    assert n == len(c)
    return d2


def test_every_path_the_cache_reads_holds_a_planted_pickle_that_never_runs(sample, tmp_path):
    c, y, tok = sample
    cache = tmp_path / 'cache'
    ref = tokenize_to_data(c, y, tok, 64)
    with _audit() as a:
        _all_operations(c, y, tok, cache)
    # files are opened by name relative to their directory's descriptor (no path is looked up twice): match names too
    opened = set(a['opened'])
    read = sorted({str(p) for p in cache.rglob('*') if p.is_file() and not p.is_symlink()
                   and (str(p) in opened or str(p.resolve()) in opened or p.name in opened)})
    assert a['unpickled'] == []
    assert any(p.endswith('ids.npy') for p in read) and any(p.endswith('manifest.json') for p in read)
    entry = cache / _entry_names(cache)[0]
    marker = tmp_path / 'PWNED'
    blob = pickle.dumps(_Payload(marker))
    design = Path(get_cache_filename(tok.name_or_path, 64, cache))           # the design's name-only .pkl-style path
    extra = [entry.with_name(entry.name + '.pkl'), design, design.with_name(design.name + '.pkl'), entry / 'data.pkl',
             cache / 'cache.pkl', entry / 'ids.npz']
    planted = 0
    for target in read + [str(p) for p in extra]:
        for kind in ('raw pickle', 'object .npy'):
            if not entry.exists(): _all_operations(c, y, tok, cache)        # (re)create the entry to plant into
            t = Path(target)
            t.parent.mkdir(parents=True, exist_ok=True)
            if kind == 'raw pickle': t.write_bytes(blob)
            else:
                with open(t, 'wb') as f: np.save(f, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
            planted += 1
            with _audit() as a:
                d = _all_operations(c, y, tok, cache)
            assert not marker.exists(), f'payload ran from {target} ({kind})'
            assert a['unpickled'] == [], (target, kind, a['unpickled'])
            assert np.array_equal(d.ids, ref.ids) and np.array_equal(d.offsets, ref.offsets) and np.array_equal(d.labels, ref.labels)
    # the entry itself replaced by a pickle file
    shutil.rmtree(entry); entry.write_bytes(blob); planted += 1
    with _audit() as a:
        d = _all_operations(c, y, tok, cache)
    assert not marker.exists() and a['unpickled'] == [] and np.array_equal(d.ids, ref.ids)
    print(f'{planted} pickles planted at {len(read)} paths the cache reads and {len(extra)} where a pickle cache would look; none ran')


# ----------------------------------------------------------------------------------------------- static checks
def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else (ast.unparse(f) if isinstance(f, ast.Attribute) else '')
            yield name, {k.arg: k.value for k in node.keywords}, node.lineno


FORBIDDEN = {'eval', 'exec', 'compile', '__import__', 'pickle.load', 'pickle.loads', 'pickle.Unpickler', 'pd.read_pickle',
             'pandas.read_pickle', 'joblib.load', 'yaml.load', 'marshal.loads', 'os.system', 'os.popen', 'dill.load', 'cloudpickle.load'}


def test_package_never_unpickles_evaluates_or_loads_torch_files_unsafely():
    problems, checked = [], 0
    for py in sorted((ROOT / 'bangla_data').glob('*.py')):
        tree = ast.parse(py.read_text(encoding='utf-8'))
        for name, kw, line in _calls(tree):
            checked += 1
            where = f'{py.name}:{line} {name}'
            if name in FORBIDDEN: problems.append(where)
            if name.endswith('torch.load'):
                if not (isinstance(kw.get('weights_only'), ast.Constant) and kw['weights_only'].value is True):
                    problems.append(where + ' without weights_only=True')
            if name in ('np.load', 'numpy.load'):
                if not (isinstance(kw.get('allow_pickle'), ast.Constant) and kw['allow_pickle'].value is False):
                    problems.append(where + ' without allow_pickle=False')
            if name.startswith('subprocess.') and isinstance(kw.get('shell'), ast.Constant) and kw['shell'].value:
                problems.append(where + ' with shell=True')
            if name.endswith(('read_csv', 'read_table')) and isinstance(kw.get('engine'), ast.Constant) and kw['engine'].value == 'python' \
               and 'converters' in kw:
                problems.append(where + ' with converters')
    assert checked > 200 and problems == [], problems


# ----------------------------------------------------------------------------------------------- hostile names and keys
HOSTILE = ['../../../../tmp/evil', '/etc/passwd', '..', '.', '', '~', '~/.ssh/authorized_keys', 'C:\\Windows\\System32',
           '..\\..\\evil', 'a/../../../b', 'a/./../..', '\x00', 'name\nwith newline', 'x' * 5000, 'ক্যাশ/../../বাইরে',
           '/', '\\\\server\\share\\x', 'file:///etc/passwd', 'org/model', '.hidden', '-rf', '*', '$(touch pwned)', '`id`']


def _inside(path, d):
    p, d = os.path.abspath(path), os.path.abspath(d)
    return os.path.dirname(p) == d and len(os.path.basename(p).encode()) <= 255 and '/' not in os.path.basename(p)


@pytest.mark.parametrize('name', HOSTILE)
def test_hostile_tokenizer_name_stays_in_cache_dir(name, tmp_path):
    d = tmp_path / 'a' / 'cache'
    p = get_cache_filename(name, 64, d, 'ab' * 16)
    assert _inside(p, d), p
    assert not os.path.basename(p).startswith('.')                     # never hidden, never a temporary/lock name


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.text(), st.integers(1, 4096))
def test_any_tokenizer_name_stays_in_cache_dir(name, max_length):
    d = '/tmp/some cache/ক'
    assert _inside(get_cache_filename(name, max_length, d, 'cd' * 16), d)


@pytest.mark.parametrize('key', ['../x', '../../etc', 'abc/../..', '/tmp/x', 'ABCDEF0123', 'zz' * 8, '', '0' * 7, 'ab\x00cd' * 3,
                                 '0123456789abcdef/..'])
def test_hostile_cache_keys_are_rejected(key, tmp_path):
    with pytest.raises(bangla_data.BanglaDataError, match='cache key must be a hex digest'):
        get_cache_filename('tok', 64, tmp_path, key)


@pytest.mark.parametrize('key', ['../..', '..', '/', '*', '.locks', '.tmp-', ''])
def test_clear_cache_with_a_hostile_key_deletes_nothing_outside(key, sample, tmp_path):
    c, y, tok = sample
    outside = tmp_path / 'outside'; outside.mkdir(); (outside / 'keep.txt').write_text('keep')
    cache = tmp_path / 'cache'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        get_or_create_tokenized_dataset(c, y, tok, 64, cache, verbose=False)
    try: clear_cache(cache, key)
    except bangla_data.BanglaDataError: pass
    assert (outside / 'keep.txt').read_text() == 'keep' and (tmp_path / 'outside').is_dir()


def _snapshot(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob('*'))


@pytest.mark.parametrize('name', ['../../escaped', '/tmp/abs-escape', '..\\..\\win-escape', 'a/b/c/../../../../up', 'x' * 400])
def test_a_tokenizer_with_a_hostile_name_writes_only_inside_cache_dir(name, sample, tmp_path):
    import copy
    c, y, tok = sample
    hostile = copy.deepcopy(tok)
    hostile.name_or_path = name
    root = tmp_path / 'root'
    cache = root / 'deep' / 'cache'
    cache.mkdir(parents=True)
    before = _snapshot(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        d = get_or_create_tokenized_dataset(c, y, hostile, 64, cache, verbose=False)
    new = [p for p in _snapshot(tmp_path) if p not in before]
    assert new and all(p.startswith('root/deep/cache/') for p in new), new
    assert isinstance(d.ids, np.memmap) and not Path('/tmp/abs-escape').exists()


def test_symlinks_planted_in_cache_dir_do_not_redirect_writes_or_deletes(sample, tmp_path):
    "An entry name, a stale temporary directory and a trash directory that are symlinks to a directory outside."
    c, y, tok = sample
    outside = tmp_path / 'outside'; outside.mkdir(); (outside / 'precious.txt').write_text('keep')
    cache = tmp_path / 'cache'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        d = get_or_create_tokenized_dataset(c, y, tok, 64, cache, verbose=False)
    name = _entry_names(cache)[0]
    del d
    shutil.rmtree(cache / name)
    os.symlink(outside, cache / name)                                   # the entry name points outside
    os.symlink(outside, cache / f'.tmp-999999-abcd-{name}')             # a "killed builder's" temporary directory
    os.symlink(outside, cache / '.trash-999999-abcd')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        d = get_or_create_tokenized_dataset(c, y, tok, 64, cache, verbose=False)
        clear_cache(cache)
    assert (outside / 'precious.txt').read_text() == 'keep' and sorted(os.listdir(outside)) == ['precious.txt']
    assert len(d) == len(c)


# ----------------------------------------------------------------------------------------------- loading never evaluates
FORMULAS = ["=cmd|' /C calc'!A0", '=HYPERLINK("http://evil.example","click")', '+1+1', '-2+3', '@SUM(1,2)', '\t=1+1', '=1+1',
            "__import__('os').system('touch PWNED')", "{{7*7}}", "${7*7}", '=DDE("cmd";"/C calc";"!A0")', "'=quoted"]


def test_formula_looking_cells_stay_plain_text(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / 'f.csv'
    with open(p, 'w', encoding='utf-8', newline='') as f:
        w = csv.writer(f)
        w.writerow(['comment_text', 'bully'])
        w.writerows([[t, i % 2] for i, t in enumerate(FORMULAS)])
    with _audit() as a:
        raw, y = load_and_preprocess_data(p, label_columns=['bully'], verbose=False, clean_text=False)
    assert raw == FORMULAS and y[:, 0].tolist() == [i % 2 for i in range(len(FORMULAS))]
    assert a['unpickled'] == [] and not (tmp_path / 'PWNED').exists()
    c, _ = load_and_preprocess_data(p, label_columns=['bully'], verbose=False)
    assert c == [clean_bangla_text(t) for t in FORMULAS] and c[0] == FORMULAS[0]        # cleaned as any text, nothing more


def test_xlsx_formula_cells_are_never_evaluated(tmp_path):
    "Formulas in a workbook are read as their stored value, never computed; without one the row is reported as missing."
    import openpyxl
    wb = openpyxl.Workbook(); ws = wb.active
    ws.append(['comment_text', 'bully'])
    for i, t in enumerate(['=1+1', '=HYPERLINK("http://x","y")', "=cmd|' /C calc'!A0", 'সাধারণ মন্তব্য']): ws.append([t, i % 2])
    wb.save(tmp_path / 'f.xlsx')
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        c, y, info = load_and_preprocess_data(tmp_path / 'f.xlsx', label_columns=['bully'], verbose=False, return_info=True)
    assert '2' not in c and c == ['সাধারণ মন্তব্য']
    assert info.dropped['missing or empty text'] == [2, 3, 4] and any('dropped 3 of 4' in str(x.message) for x in w)
