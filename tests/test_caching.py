"""Integration tests of the tokenization cache (issue 3) on the real data and tokenizers in ../shared:
fingerprint properties, equality with the tokenizer's own output, crash safety (SIGKILL mid-write), four concurrent
builders, corrupt entries, a planted pickle, read-only and full cache directories, parallelism not leaking into forks."""
import errno
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import BANGLABERT_DIR, CYBERBULLY_CSV, CYBERBULLY_LABELS, MBERT_DIR, ROOT, TOXIC_CSV, TOXIC_LABELS, load_real as _load
from bangla_data.cache import cache_key, cache_key_inputs, get_or_create_tokenized_dataset
from bangla_data.fingerprint import tokenizer_fingerprint
from bangla_data.store import clear_cache, entry_names, list_cache_entries
from bangla_data.tokenized import TokenizedData
from bangla_data.sample import sample_tokenizer
from bangla_data.loading import load_and_preprocess_data

pytestmark = pytest.mark.shared   # every test here reads the real data or tokenizers in ../shared


@pytest.fixture(scope='module')
def small(cyberbully):
    "300 real comments and a small WordPiece tokenizer built from them (fast)."
    comments, labels = cyberbully[0][:300], cyberbully[1][:300]
    return comments, labels, sample_tokenizer(comments)


def _entries(d):
    return entry_names(d)


def _key(*a, **k):
    return cache_key(cache_key_inputs(*a, **k))


def _run(code, *args, timeout=120, **kw):
    "Run `code` in a fresh interpreter in the repo; return the CompletedProcess."
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, **kw)


# ----------------------------------------------------------------------------------------------- correctness, fingerprint
@pytest.mark.parametrize('tok_name', ['banglabert', 'mbert'])
def test_ids_equal_tokenizer_output_on_all_real_comments(tok_name, request, cyberbully, toxic, tmp_path):
    tok = request.getfixturevalue(tok_name)
    for comments, labels in (cyberbully, toxic):
        d = get_or_create_tokenized_dataset(comments, labels, tok, 128, tmp_path, verbose=False)
        ref = tok(comments, truncation=True, max_length=128)['input_ids']
        assert d.lengths.tolist() == [len(r) for r in ref]
        assert np.array_equal(np.asarray(d.ids), np.fromiter((t for r in ref for t in r), np.int64))
        assert d.ids.dtype == (np.uint16 if len(tok) <= 65536 else np.int32)
        design = tok(comments[:500], padding='max_length', truncation=True, max_length=128, return_tensors='pt')
        full = d.padded_to_max_length()
        assert (full['input_ids'][:500] == design['input_ids']).all()
        assert (full['attention_mask'][:500] == design['attention_mask']).all()
        assert np.array_equal(d['labels'].numpy(), labels)
        assert d.special_token_ids.tolist() == sorted(tok.all_special_ids)
        assert d.mask_token_id == tok.mask_token_id and d.pad_token_id == tok.pad_token_id


def test_fingerprint_properties_on_real_data(banglabert, mbert, cyberbully, toxic, tmp_path):
    comments, labels = cyberbully
    k0 = _key(comments, labels, banglabert, 128)
    assert _key(list(comments), labels.copy(), banglabert, 128) == k0            # same content, new objects
    c1 = list(comments); c1[5000] = c1[5000] + '।'
    l1 = labels.copy(); l1[1234, 2] = 1 - l1[1234, 2]
    others = {_key(c1, labels, banglabert, 128), _key(comments, l1, banglabert, 128), _key(comments, labels, banglabert, 64),
              _key(comments, labels, mbert, 128), _key(comments, labels, banglabert, 128, cleaning={'remove_urls': False}),
              _key(comments, labels, banglabert, 128, add_special_tokens=False), _key(*toxic[:1], toxic[1], banglabert, 128)}
    assert k0 not in others and len(others) == 7
    # the same CSV content in another directory: same key
    copy = tmp_path / 'elsewhere' / 'renamed.csv'
    copy.parent.mkdir()
    shutil.copy(CYBERBULLY_CSV, copy)
    assert _key(*_load(copy, 'comment', CYBERBULLY_LABELS), banglabert, 128) == k0
    # the tokenizer by content: a second object from the same files, and a copy of its directory, agree
    from transformers import AutoTokenizer
    tdir = tmp_path / 'tok_copy'
    shutil.copytree(BANGLABERT_DIR, tdir)
    assert tokenizer_fingerprint(AutoTokenizer.from_pretrained(str(BANGLABERT_DIR))) == tokenizer_fingerprint(banglabert)
    assert tokenizer_fingerprint(AutoTokenizer.from_pretrained(str(tdir))) == tokenizer_fingerprint(banglabert)
    assert tokenizer_fingerprint(mbert) != tokenizer_fingerprint(banglabert)
    # ... and a changed vocabulary file under the same name does not
    vocab = tdir / 'vocab.txt'
    tj = tdir / 'tokenizer.json'
    if tj.exists():
        spec = json.loads(tj.read_text(encoding='utf-8'))
        first = next(t for t in spec['model']['vocab'] if not t.startswith('['))
        spec['model']['vocab']['নতুনশব্দ'] = spec['model']['vocab'].pop(first)
        tj.write_text(json.dumps(spec, ensure_ascii=False), encoding='utf-8')
    else:
        lines = vocab.read_text(encoding='utf-8').splitlines(); lines[-1] = 'নতুনশব্দ'
        vocab.write_text('\n'.join(lines) + '\n', encoding='utf-8')
    assert tokenizer_fingerprint(AutoTokenizer.from_pretrained(str(tdir))) != tokenizer_fingerprint(banglabert)
    # a new process computes the same key (nothing depends on hash seeds, object ids or time)
    r = _run(f"""
        import warnings, sys; warnings.simplefilter('ignore')
        sys.path.insert(0, 'tests')
        from test_caching import _load, _key
        from conftest import CYBERBULLY_CSV, CYBERBULLY_LABELS, BANGLABERT_DIR
        from transformers import AutoTokenizer
        print(_key(*_load(CYBERBULLY_CSV, 'comment', CYBERBULLY_LABELS), AutoTokenizer.from_pretrained(str(BANGLABERT_DIR)), 128))
        """, env={**os.environ, 'PYTHONHASHSEED': '123'})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == k0


def test_hit_in_a_new_process_and_copied_tokenizer_dir(banglabert, cyberbully, tmp_path, capsys):
    comments, labels = cyberbully
    d = get_or_create_tokenized_dataset(comments, labels, banglabert, 128, tmp_path / 'c')
    assert 'miss' in capsys.readouterr().out
    r = _run("""
        import sys, sys, warnings; warnings.simplefilter('ignore'); sys.path.insert(0, 'tests')
        from test_caching import _load
        from conftest import CYBERBULLY_CSV, CYBERBULLY_LABELS, BANGLABERT_DIR
        from transformers import AutoTokenizer
        from bangla_data.cache import get_or_create_tokenized_dataset
        c, l = _load(CYBERBULLY_CSV, 'comment', CYBERBULLY_LABELS)
        d = get_or_create_tokenized_dataset(c, l, AutoTokenizer.from_pretrained(sys.argv[2]), 128, sys.argv[1])
        """, tmp_path / 'c', BANGLABERT_DIR)
    assert r.returncode == 0, r.stderr
    assert 'cache hit' in r.stdout and 'miss' not in r.stdout
    # the same tokenizer content under another name finds the entry
    from transformers import AutoTokenizer
    shutil.copytree(BANGLABERT_DIR, tmp_path / 'my_tok')
    again = get_or_create_tokenized_dataset(comments, labels, AutoTokenizer.from_pretrained(str(tmp_path / 'my_tok')), 128,
                                            tmp_path / 'c')
    assert 'cache hit' in capsys.readouterr().out
    assert again.manifest['key'] == d.manifest['key'] and len(_entries(tmp_path / 'c')) == 1


# ----------------------------------------------------------------------------------------------- crash safety
_SLOW_WRITER = """
    import sys, time, warnings, numpy as np; warnings.simplefilter('ignore'); sys.path.insert(0, 'tests')
    import bangla_data.cache as bc
    from test_caching import _load
    from conftest import CYBERBULLY_CSV, CYBERBULLY_LABELS, BANGLABERT_DIR
    from transformers import AutoTokenizer
    c, l = _load(CYBERBULLY_CSV, 'comment', CYBERBULLY_LABELS)
    _write = np.lib.format.write_array
    def slow_write(f, a, **k):          # write half of each array, pause, then the rest: a wide window for the kill
        print('WRITING', f.name, flush=True)
        _write(f, a, **k); f.flush(); time.sleep(2)
    np.lib.format.write_array = slow_write
    bc.get_or_create_tokenized_dataset(c, l, AutoTokenizer.from_pretrained(str(BANGLABERT_DIR)), 128, sys.argv[1], verbose=False)
    print('DONE', flush=True)
"""


@pytest.mark.parametrize('kill_at', ['ids.npy', 'labels.npy'])
def test_sigkill_mid_write_leaves_no_loadable_partial_entry(kill_at, banglabert, cyberbully, tmp_path):
    cache = tmp_path / 'c'
    p = subprocess.Popen([sys.executable, '-c', textwrap.dedent(_SLOW_WRITER), str(cache)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        for line in p.stdout:
            if line.startswith('WRITING') and line.strip().endswith(kill_at):
                time.sleep(0.3)
                p.send_signal(signal.SIGKILL)
                break
        p.wait(timeout=60)
    finally:
        if p.poll() is None: p.kill()
    assert p.returncode == -signal.SIGKILL
    assert _entries(cache) == []                                    # nothing under an entry name
    leftovers = [n for n in os.listdir(cache) if n.startswith('.tmp-')]
    assert leftovers                                               # the partial build is only in a temporary directory
    assert list_cache_entries(cache)[0]['status'].startswith('interrupted')
    comments, labels = cyberbully
    with warnings.catch_warnings():
        warnings.simplefilter('error')                             # a clean miss, no corruption warning
        d = get_or_create_tokenized_dataset(comments, labels, banglabert, 128, cache, verbose=False)
    assert len(d) == len(comments) and _entries(cache) and not [n for n in os.listdir(cache) if n.startswith('.tmp-')]
    assert get_or_create_tokenized_dataset(comments, labels, banglabert, 128, cache, verbose=False).row(7).tolist() == d.row(7).tolist()


# ----------------------------------------------------------------------------------------------- concurrency
_BUILDER = """
    import sys, os, time, hashlib, warnings, numpy as np; warnings.simplefilter('ignore'); sys.path.insert(0, 'tests')
    from test_caching import _load
    from conftest import CYBERBULLY_CSV, CYBERBULLY_LABELS, BANGLABERT_DIR
    from transformers import AutoTokenizer
    from bangla_data.cache import get_or_create_tokenized_dataset
    c, l = _load(CYBERBULLY_CSV, 'comment', CYBERBULLY_LABELS)
    c = [f'{t} {i}' for i, t in enumerate(c)]          # all distinct: the build takes a while
    tok = AutoTokenizer.from_pretrained(str(BANGLABERT_DIR))
    start = float(sys.argv[2])
    while time.time() < start: time.sleep(0.001)
    d = get_or_create_tokenized_dataset(c, l, tok, 128, sys.argv[1])
    print('RESULT', hashlib.sha256(np.asarray(d.ids).tobytes() + np.asarray(d.offsets).tobytes()).hexdigest(), flush=True)
"""


def test_four_processes_build_once_and_agree(tmp_path):
    cache = tmp_path / 'c'
    start = time.time() + 8
    procs = [subprocess.Popen([sys.executable, '-c', textwrap.dedent(_BUILDER), str(cache), str(start)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(4)]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, outs): assert p.returncode == 0, err
    outs = [o for o, _ in outs]
    assert sum('cache miss' in o for o in outs) == 1, outs            # one process built
    assert sum('cache hit' in o for o in outs) == 3, outs             # the others waited and mapped its entry
    results = {line for o in outs for line in o.splitlines() if line.startswith('RESULT')}
    assert len(results) == 1
    assert len(_entries(cache)) == 1 and not [n for n in os.listdir(cache) if n.startswith('.tmp-')]


# ----------------------------------------------------------------------------------------------- corruption
def _flip(path, where):
    with open(path, 'r+b') as f:
        size = f.seek(0, 2)
        pos = {'end': size - 1, 'middle': size // 2, 'header': 20}[where]
        f.seek(pos); b = f.read(1); f.seek(pos); f.write(bytes([b[0] ^ 0x40]))


DAMAGE = {
    'flip last byte of ids': lambda e: _flip(e / 'ids.npy', 'end'),
    'flip a middle byte of offsets': lambda e: _flip(e / 'offsets.npy', 'middle'),
    'flip a byte of the labels header': lambda e: _flip(e / 'labels.npy', 'header'),
    'truncate ids': lambda e: os.truncate(e / 'ids.npy', os.path.getsize(e / 'ids.npy') // 2),
    'truncate offsets to the header': lambda e: os.truncate(e / 'offsets.npy', 100),
    'empty labels': lambda e: os.truncate(e / 'labels.npy', 0),
    'remove labels': lambda e: os.unlink(e / 'labels.npy'),
    'remove the manifest': lambda e: os.unlink(e / 'manifest.json'),
    'truncate the manifest': lambda e: os.truncate(e / 'manifest.json', 50),
    'manifest with another key': lambda e: (e / 'manifest.json').write_text(
        (e / 'manifest.json').read_text().replace('"key": "', '"key": "0', 1)),
    'swap ids and offsets': lambda e: (os.rename(e / 'ids.npy', e / 'x'), os.rename(e / 'offsets.npy', e / 'ids.npy'),
                                       os.rename(e / 'x', e / 'offsets.npy')),
}


@pytest.mark.parametrize('damage', list(DAMAGE))
def test_corrupt_entry_is_detected_and_rebuilt(damage, banglabert, cyberbully, tmp_path):
    comments, labels = cyberbully
    good = get_or_create_tokenized_dataset(comments, labels, banglabert, 128, tmp_path, verbose=False)
    ref = (np.array(good.ids), np.array(good.offsets), np.array(good.labels))
    entry = tmp_path / _entries(tmp_path)[0]
    del good
    DAMAGE[damage](entry)
    with pytest.warns(UserWarning, match='corrupt'):
        d = get_or_create_tokenized_dataset(comments, labels, banglabert, 128, tmp_path, verbose=False)
    for a, b in zip((d.ids, d.offsets, d.labels), ref): assert np.array_equal(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter('error')                             # rebuilt: the next load is a clean hit
        d2 = get_or_create_tokenized_dataset(comments, labels, banglabert, 128, tmp_path, verbose=False)
    assert np.array_equal(d2.ids, ref[0]) and isinstance(d2.ids, np.memmap)


# ----------------------------------------------------------------------------------------------- planted pickle
class _Boom:
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (open, (self.marker, 'w'))       # unpickling creates the marker file


@pytest.mark.parametrize('where', ['as ids.npy', 'as ids.npy with an npy header', 'as the entry itself', 'design-style .pkl name'])
def test_planted_pickle_is_never_unpickled(where, small, tmp_path):
    comments, labels, tok = small
    cache = tmp_path / 'c'
    d = get_or_create_tokenized_dataset(comments, labels, tok, 64, cache, verbose=False)
    entry = cache / _entries(cache)[0]
    ref = np.array(d.ids); del d
    marker = tmp_path / 'PWNED'
    payload = pickle.dumps({'input_ids': _Boom(str(marker))})
    if where == 'as ids.npy': (entry / 'ids.npy').write_bytes(payload)
    elif where == 'as ids.npy with an npy header':             # a real .npy of dtype object: its body is a pickle
        np.save(entry / 'ids.npy', np.array([_Boom(str(marker))], dtype=object), allow_pickle=True)
    elif where == 'as the entry itself':
        shutil.rmtree(entry); entry.write_bytes(payload)
    else:                                                      # where the design's code would look, and next to our entry
        shutil.rmtree(entry)
        sys.path.insert(0, str(ROOT / 'benchmarks'))
        import design_cache
        Path(design_cache.get_cache_filename(tok.name_or_path, 64, str(cache))).write_bytes(payload)
        (cache / (entry.name + '.pkl')).write_bytes(payload)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        d = get_or_create_tokenized_dataset(comments, labels, tok, 64, cache, verbose=False)
    assert not marker.exists()
    assert np.array_equal(d.ids, ref)
    if where != 'design-style .pkl name': assert any('corrupt' in str(x.message) for x in w)
    assert not marker.exists()


# ----------------------------------------------------------------------------------------------- read-only / full disk
def _make_read_only(path):
    "Make `path` unwritable even for root (immutable attribute); return an undo function, or skip."
    if os.geteuid() != 0:
        os.chmod(path, 0o555)
        return lambda: os.chmod(path, 0o755)
    r = subprocess.run(['chattr', '+i', str(path)], capture_output=True)
    if r.returncode: pytest.skip(f"running as root and cannot make a directory immutable: {r.stderr!r}")
    return lambda: subprocess.run(['chattr', '-i', str(path)], check=True)


def test_read_only_cache_dir_works_with_a_warning(small, tmp_path):
    comments, labels, tok = small
    empty, filled = tmp_path / 'empty', tmp_path / 'filled'
    empty.mkdir()
    ref = get_or_create_tokenized_dataset(comments, labels, tok, 64, filled, verbose=False)
    undo = [_make_read_only(empty), _make_read_only(filled)]
    try:
        with pytest.warns(UserWarning, match='not writable'):
            d = get_or_create_tokenized_dataset(comments, labels, tok, 64, empty, verbose=False)
        assert np.array_equal(d.ids, ref.ids) and os.listdir(empty) == []
        assert d.cache_info['status'] == 'memory'
        with pytest.warns(UserWarning, match='not writable'):       # a directory that cannot even be created
            get_or_create_tokenized_dataset(comments, labels, tok, 64, empty / 'sub', verbose=False)
        with warnings.catch_warnings():
            warnings.simplefilter('error')                          # an existing entry in a read-only dir is a plain hit
            h = get_or_create_tokenized_dataset(comments, labels, tok, 64, filled, verbose=False)
        assert isinstance(h.ids, np.memmap) and np.array_equal(h.ids, ref.ids)
        assert h.cache_info['status'] == 'hit'
        with pytest.warns(UserWarning, match='kept in memory'):     # a miss in it: in memory
            get_or_create_tokenized_dataset(comments, labels, tok, 32, filled, verbose=False)
    finally:
        for u in undo: u()


def test_full_disk_degrades_to_memory(small, monkeypatch, tmp_path):
    comments, labels, tok = small
    real = np.lib.format.write_array
    calls = []
    def full(f, a, **k):
        calls.append(1)
        if len(calls) == 2: raise OSError(errno.ENOSPC, 'No space left on device')
        return real(f, a, **k)
    monkeypatch.setattr(np.lib.format, 'write_array', full)
    with pytest.warns(UserWarning, match='No space left'):
        d = get_or_create_tokenized_dataset(comments, labels, tok, 64, tmp_path, verbose=False)
    assert len(d) == len(comments) and not isinstance(d.ids, np.memmap)
    assert [n for n in os.listdir(tmp_path) if not n.startswith('.locks')] == []   # no partial entry, no temp dir


# ----------------------------------------------------------------------------------------------- parallelism and workers
def test_parallel_build_does_not_leak_into_forked_workers(tmp_path):
    r = _run("""
        import os, sys, warnings; warnings.simplefilter('ignore'); sys.path.insert(0, 'tests')
        import bangla_data
        from test_caching import _load
        from conftest import CYBERBULLY_CSV, CYBERBULLY_LABELS, BANGLABERT_DIR
        from transformers import AutoTokenizer
        from bangla_data.cache import get_or_create_tokenized_dataset
        c, l = _load(CYBERBULLY_CSV, 'comment', CYBERBULLY_LABELS)
        tok = AutoTokenizer.from_pretrained(str(BANGLABERT_DIR))
        d = get_or_create_tokenized_dataset(c, l, tok, 128, sys.argv[1], verbose=False, parallel=True)
        assert os.environ['TOKENIZERS_PARALLELISM'] == 'false'
        import torch
        from torch.utils.data import DataLoader
        class DS(torch.utils.data.Dataset):
            def __len__(self): return 64
            def __getitem__(self, i): return torch.tensor(tok(c[i], truncation=True, max_length=16, padding='max_length')['input_ids'])
        n = sum(len(b) for b in DataLoader(DS(), batch_size=8, num_workers=2, multiprocessing_context='fork'))
        print('OK', n)
        """, tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert 'OK 64' in r.stdout
    assert 'The current process just got forked' not in r.stderr


def test_mapped_data_pickles_as_its_path(banglabert, cyberbully, tmp_path):
    comments, labels = cyberbully
    d = get_or_create_tokenized_dataset(comments, labels, banglabert, 128, tmp_path, verbose=False)
    blob = pickle.dumps(d)
    assert len(blob) < 2000                                        # a spawn worker maps the file instead of receiving a copy
    e = pickle.loads(blob)
    assert isinstance(e.ids, np.memmap) and np.array_equal(e.ids, d.ids) and len(e) == len(d)
    m = TokenizedData.from_lists([[1, 2]], [[1]], 0, 4)
    assert pickle.loads(pickle.dumps(m)).row(0).tolist() == [1, 2]


def test_housekeeping_on_real_entries(banglabert, mbert, cyberbully, tmp_path):
    comments, labels = cyberbully
    for tok in (banglabert, mbert):
        for n in (64, 128): get_or_create_tokenized_dataset(comments, labels, tok, n, tmp_path, verbose=False)
    rows = list_cache_entries(tmp_path)
    assert len(rows) == 4 and all(r['status'] == 'ok' and r['rows'] == len(comments) for r in rows)
    assert {(Path(r['tokenizer']).name, r['max_length']) for r in rows} == {(a, b) for a in ('banglabert', 'mbert-cased') for b in (64, 128)}
    assert all(0 < r['bytes'] < 5_000_000 and r['age_seconds'] >= 0 for r in rows)
    removed = clear_cache(tmp_path, 'banglabert_maxlen64')
    assert len(removed) == 1 and len(list_cache_entries(tmp_path)) == 3
    dead = tmp_path / '.tmp-999999999-abcd-banglabert_maxlen128_0123456789abcdef_tokenized'   # left by a killed build
    dead.mkdir()
    assert list_cache_entries(tmp_path)[-1]['status'].startswith('interrupted')
    assert len(clear_cache(tmp_path)) == 3 and list_cache_entries(tmp_path) == [] and not dead.exists()
