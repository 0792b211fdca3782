"""Issue 7, faults: the tokenization cache under kills, concurrency, full disks, hostile directories and tampering.

The invariant everywhere: whatever happened to the cache directory, `get_or_create_tokenized_dataset` returns data
identical to an uncached tokenization (ids, offsets, labels, pad/mask/special ids, max_length) — by mapping a
complete entry, by rebuilding, or in memory with a warning — and never leaves a partial entry under an entry name.
`tests/test_caching.py` has the single-point versions (a kill at two fixed points, four builders of one entry,
eleven kinds of damage, read-only directories, a simulated full disk); these tests add the randomized and
system-level ones. Each test prints how many faults it injected.
"""
import errno
import json
import multiprocessing as mp
import os
import random
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

import bangla_data.cache as bc
import bangla_data.store as bs
from bangla_data.cache import get_or_create_tokenized_dataset
from bangla_data.store import clear_cache, entry_names as _entry_names, list_cache_entries, open_entry as _open_entry
from bangla_data.tokenize import tokenize_to_data
from bangla_data.sample import sample_tokenizer
from bangla_data.loading import load_and_preprocess_data
from conftest import BANGLABERT_DIR, CYBERBULLY_CSV, CYBERBULLY_LABELS, ROOT

pytestmark = pytest.mark.shared   # every test here reads the real comments or tokenizer in ../shared


@pytest.fixture(scope='module')
def real():
    "The real cyberbullying comments (12,546 rows, a build of about a second) and a small tokenizer built from them."
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        c, y = load_and_preprocess_data(CYBERBULLY_CSV, text_column='comment', label_columns=CYBERBULLY_LABELS, verbose=False)
    return c, y, sample_tokenizer(c[:2000])


def _fields(d):
    return dict(ids=np.asarray(d.ids).tolist() if len(d.ids) < 50 else np.asarray(d.ids).tobytes(),
                offsets=np.asarray(d.offsets).tobytes(), labels=np.asarray(d.labels).tobytes(), ids_dtype=str(d.ids.dtype),
                pad=int(d.pad_token_id), max_length=int(d.max_length), mask=d.mask_token_id,
                special=sorted(map(int, d.special_token_ids)),
                spans=None if d.spans is None else [np.asarray(a).tobytes() for a in d.spans])


def _same(d, ref):
    a, b = _fields(d), _fields(ref)
    bad = [k for k in a if a[k] != b[k]]
    assert not bad, f'differs from an uncached tokenization in {bad}'


def _tmp_names(cache):
    return sorted(n for n in os.listdir(cache) if n.startswith(('.tmp-', '.trash-'))) if os.path.isdir(cache) else []


def _complete_entries(cache, ref):
    "Every entry under an entry name must be complete and correct."
    for n in _entry_names(cache):
        _same(_open_entry(os.path.join(cache, n), verify=True), ref)
    return len(_entry_names(cache))


# ----------------------------------------------------------------------------------------------- SIGKILL, 20 random points
def _slow_build(comments, labels, tok, max_length, cache, stamp=None):
    "The build in a forked child, each array write stretched to widen the write phase; `stamp` records when writing starts."
    real_write = np.lib.format.write_array
    def slow(f, a, **k):
        if stamp and not os.path.exists(stamp): Path(stamp).write_text(repr(time.time()))
        time.sleep(0.08); real_write(f, a, **k); f.flush(); time.sleep(0.08)
    np.lib.format.write_array = slow
    warnings.simplefilter('ignore')
    get_or_create_tokenized_dataset(comments, labels, tok, max_length, cache, verbose=False, parallel=False)
    os._exit(0)


def test_sigkill_at_20_random_points_never_leaves_a_torn_entry(real, tmp_path):
    comments, labels, tok = real
    ref = tokenize_to_data(comments, labels, tok, 64, parallel=False)
    cache = str(tmp_path / 'cache')
    ctx = mp.get_context('fork')
    stamp = tmp_path / 'writing-started'
    t = time.time()                                                  # how long one (slowed) build takes here, and its write phase
    p = ctx.Process(target=_slow_build, args=(comments, labels, tok, 64, str(tmp_path / 'calibrate'), str(stamp))); p.start(); p.join()
    T, Tw = time.time() - t, float(stamp.read_text()) - t
    rng = random.Random(7)
    phases = {'before writing': 0, 'while writing': 0, 'after the rename': 0}
    window = 6 * 0.08                                                # the stretched write phase
    for i in range(20):                                              # 5 kills before the first write, 10 in it, 5 after it
        delay = (rng.uniform(0, Tw) if i % 4 == 0 else rng.uniform(Tw + window, max(T * 1.6, Tw + window + 0.2)) if i % 4 == 3
                 else rng.uniform(Tw, Tw + window))
        p = ctx.Process(target=_slow_build, args=(comments, labels, tok, 64, cache))
        p.start(); time.sleep(delay); os.kill(p.pid, signal.SIGKILL); p.join()
        assert p.exitcode in (-signal.SIGKILL, 0)
        n = _complete_entries(cache, ref)                            # nothing torn under an entry name
        phases['after the rename' if n else 'while writing' if _tmp_names(cache) else 'before writing'] += 1
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter('always')
            d = get_or_create_tokenized_dataset(comments, labels, tok, 64, cache, verbose=False)
        assert not [x for x in w if 'corrupt' in str(x.message)], [str(x.message) for x in w]
        _same(d, ref)
        assert isinstance(d.ids, np.memmap) and _complete_entries(cache, ref) == 1
        assert _tmp_names(cache) == []                               # the build swept the killed builder's temporary dir
        del d
        clear_cache(cache)                                           # the next kill hits a build again
    print(f'20 SIGKILLs over a {T:.2f} s build: {phases}')
    assert phases['while writing'] >= 3 and sum(phases.values()) == 20


# ----------------------------------------------------------------------------------------------- concurrent builders
_BUILDER = """
import os, sys, time, hashlib, warnings, json
warnings.simplefilter('ignore')
sys.path.insert(0, 'tests')
import numpy as np
import bangla_data.cache as bc
from test_faults import _subset
max_length, cache, log, start = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
comments, labels, tok = _subset()
real = bc.tokenize_to_data
def counted(*a, **k):
    with open(log, 'a') as f: f.write(f'BUILD {max_length} {os.getpid()}\\n')
    return real(*a, **k)
bc.tokenize_to_data = counted
while time.time() < start: time.sleep(0.002)
d = bc.get_or_create_tokenized_dataset(comments, labels, tok, max_length, cache, verbose=False)
print('RESULT', max_length, hashlib.sha256(np.asarray(d.ids).tobytes() + np.asarray(d.offsets).tobytes()
                                           + np.asarray(d.labels).tobytes()).hexdigest(), type(d.ids).__name__, flush=True)
"""


def _subset():
    "Real comments made distinct (so the build takes a while) and a small tokenizer, deterministic across processes."
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        c, y = load_and_preprocess_data(CYBERBULLY_CSV, text_column='comment', label_columns=CYBERBULLY_LABELS, verbose=False)
    return [f'{t} {i}' for i, t in enumerate(c)], y, sample_tokenizer(c[:2000])


def test_eight_processes_four_on_one_entry_four_on_others(tmp_path):
    import hashlib
    cache, log = tmp_path / 'shared cache', tmp_path / 'builds.log'
    jobs = [64] * 4 + [32, 48, 96, 128]                              # 4 builders of one entry, 4 of different entries
    start = time.time() + 6
    procs = [subprocess.Popen([sys.executable, '-c', _BUILDER, str(m), str(cache), str(log), str(start)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for m in jobs]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs): assert p.returncode == 0, err[-2000:]
    builds = sorted(int(l.split()[1]) for l in log.read_text().splitlines())
    assert builds == sorted(set(jobs)), f'builds per entry: {builds}'   # exactly one build per entry
    results = {}
    for out, _ in outs:
        _, m, h, kind = next(l for l in out.splitlines() if l.startswith('RESULT')).split()
        results.setdefault(int(m), set()).add(h)
        assert kind == 'memmap'                                       # everyone ended up mapping the stored entry
    comments, labels, tok = _subset()
    for m, hs in results.items():                                     # identical to a single-process, uncached run
        d = tokenize_to_data(comments, labels, tok, m)
        single = hashlib.sha256(np.asarray(d.ids).tobytes() + np.asarray(d.offsets).tobytes() + np.asarray(d.labels).tobytes()).hexdigest()
        assert hs == {single}, m
    assert len(_entry_names(cache)) == 5 and _tmp_names(cache) == []
    print(f'{len(jobs)} concurrent builders, {len(set(jobs))} entries, {len(builds)} builds')


# ----------------------------------------------------------------------------------------------- disk full
def _mount_tmpfs(path, size):
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which('mount') is None: return False
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(path)], capture_output=True)
    return r.returncode == 0


@pytest.fixture(scope='module')
def entry_bytes(real, tmp_path_factory):
    "Size of the real entry on disk, to size the small file systems below."
    comments, labels, tok = real
    cache = tmp_path_factory.mktemp('size')
    get_or_create_tokenized_dataset(comments, labels, tok, 64, cache, verbose=False)
    return sum(f.stat().st_size for f in _entry(cache).iterdir())


@pytest.mark.parametrize('fraction', [0.01, 0.3, 0.6, 0.9, 0.99])
def test_full_tmpfs_warns_and_keeps_the_result_in_memory(real, tmp_path, entry_bytes, fraction):
    "A real, small file system (tmpfs) holding a fraction of the entry: the disk fills at a different point of the write."
    comments, labels, tok = real
    mnt = tmp_path / 'small'
    size = max(4096, int(entry_bytes * fraction))
    if not _mount_tmpfs(mnt, size): pytest.skip('cannot mount a tmpfs here (needs root); test_simulated_write_failures covers it')
    try:
        ref = tokenize_to_data(comments, labels, tok, 64)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter('always')
            d = get_or_create_tokenized_dataset(comments, labels, tok, 64, mnt / 'cache', verbose=False)
        msgs = [str(x.message) for x in w]
        # numpy reports a short write as "N requested and M written" (no errno): the warning still says what happened
        assert any(('No space left on device' in m or 'requested and' in m) and 'in memory' in m for m in msgs), msgs
        _same(d, ref)
        assert not isinstance(d.ids, np.memmap)
        left = [str(p.relative_to(mnt)) for p in mnt.rglob('*') if not p.name.endswith('.lock') and p.name != '.locks' and p.name != 'cache']
        assert left == [], left                                      # no partial entry, no temporary directory
        print(f'tmpfs of {size:,} bytes for a {entry_bytes:,}-byte entry: {shutil.disk_usage(mnt).used} bytes used after the failed write')
    finally:
        subprocess.run(['umount', '-l', str(mnt)], capture_output=True)


WRITE_POINTS = ['ids.npy', 'offsets.npy', 'labels.npy', 'span_codes.npy', 'span_exceptions.npy', 'manifest', 'fsync',
                'rename', 'mkdtemp', 'lock']


@pytest.mark.parametrize('point', WRITE_POINTS)
def test_simulated_write_failures(real, tmp_path, monkeypatch, point):
    "ENOSPC (or EIO) injected at each write the cache makes: a warning, the data in memory, no partial files."
    comments, labels, tok = real
    comments, labels = comments[:500], labels[:500]
    ref = tokenize_to_data(comments, labels, tok, 64)
    cache = tmp_path / 'c'
    full = OSError(errno.ENOSPC, 'No space left on device')
    if point.endswith('.npy'):
        real_write = np.lib.format.write_array
        def write(f, a, **k):
            if os.path.basename(f.name) == point: raise full
            return real_write(f, a, **k)
        monkeypatch.setattr(np.lib.format, 'write_array', write)
    elif point == 'manifest':
        def dump(*a, **k): raise full
        monkeypatch.setattr(bs.json, 'dump', dump)
    elif point == 'fsync':
        def fsync(fd): raise OSError(errno.EIO, 'Input/output error')
        monkeypatch.setattr(bs.os, 'fsync', fsync)
    elif point == 'rename':
        def rename(a, b): raise OSError(errno.ENOSPC, 'No space left on device')
        monkeypatch.setattr(bs.os, 'rename', rename)
    elif point == 'mkdtemp':
        def mkdtemp(*a, **k): raise full
        monkeypatch.setattr(bs.tempfile, 'mkdtemp', mkdtemp)
    else:
        def makedirs(*a, **k): raise full
        monkeypatch.setattr(bs.os, 'makedirs', makedirs)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        d = get_or_create_tokenized_dataset(comments, labels, tok, 64, cache, verbose=False)
    msgs = [str(x.message) for x in w]
    assert any('in memory' in m and ('No space left' in m or 'Input/output' in m) for m in msgs), msgs
    _same(d, ref)
    monkeypatch.undo()
    assert _entry_names(cache) == [] and _tmp_names(cache) == []
    with warnings.catch_warnings():
        warnings.simplefilter('error')                               # space again: the next run stores the entry
        _same(get_or_create_tokenized_dataset(comments, labels, tok, 64, cache, verbose=False), ref)
    assert len(_entry_names(cache)) == 1


# ----------------------------------------------------------------------------------------------- hostile directories
def test_cache_dir_deleted_between_runs_and_under_an_open_entry(real, tmp_path):
    comments, labels, tok = real
    ref = tokenize_to_data(comments, labels, tok, 64)
    cache = tmp_path / 'c'
    d = get_or_create_tokenized_dataset(comments, labels, tok, 64, cache, verbose=False)
    shutil.rmtree(cache)                                             # deleted while the entry is mapped
    _same(d, ref)
    assert d.batch(np.arange(5))['input_ids'].shape[0] == 5          # the mapping stays valid
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        _same(get_or_create_tokenized_dataset(comments, labels, tok, 64, cache, verbose=False), ref)   # rebuilt, no warning
    (cache / _entry_names(cache)[0] / 'ids.npy').unlink()
    shutil.rmtree(cache / '.locks')                                  # the lock directory gone too
    with pytest.warns(UserWarning, match='corrupt'):
        _same(get_or_create_tokenized_dataset(comments, labels, tok, 64, cache, verbose=False), ref)
    cache_file = tmp_path / 'not a dir'
    cache_file.write_text('x')                                       # cache_dir is a file
    with pytest.warns(UserWarning, match='in memory'):
        _same(get_or_create_tokenized_dataset(comments, labels, tok, 64, cache_file, verbose=False), ref)
    assert cache_file.read_text() == 'x'


def test_path_with_spaces_and_bangla_characters(tmp_path):
    "Cache directory and tokenizer directory with spaces and Bangla; the entry is reused by a new process and by spawn workers."
    cache = tmp_path / 'আমার ক্যাশ' / 'with spaces & ত্র'
    tokdir = tmp_path / 'টোকেনাইজার কপি'
    shutil.copytree(BANGLABERT_DIR, tokdir)
    code = textwrap.dedent("""
        import sys, warnings; warnings.simplefilter('ignore'); sys.path.insert(0, 'tests')
        from transformers import AutoTokenizer
        from test_faults import _subset
        from bangla_data.cache import get_or_create_tokenized_dataset
        from bangla_data.kfold import prepare_kfold_splits
        from bangla_data.loaders import create_data_loaders
        c, y, _ = _subset()
        c, y = c[:3000], y[:3000]
        d = get_or_create_tokenized_dataset(c, y, AutoTokenizer.from_pretrained(sys.argv[2]), 64, sys.argv[1])
        if sys.argv[3] == 'loaders':
            tr, va = prepare_kfold_splits(c, y, 3)[0]
            train, _ = create_data_loaders(d, tr, va, batch_size=256, num_workers=1, multiprocessing_context='spawn')
            print('ROWS', sum(len(b['labels']) for b in train))
        """)
    runs = [subprocess.run([sys.executable, '-c', code, str(cache), str(tokdir), what], cwd=ROOT, capture_output=True, text=True,
                           timeout=300) for what in ('build', 'loaders')]
    for r in runs: assert r.returncode == 0, r.stderr[-3000:]
    assert 'miss' in runs[0].stdout and 'cache hit' in runs[1].stdout and 'miss' not in runs[1].stdout
    assert any(l.startswith('ROWS 2') for l in runs[1].stdout.splitlines())
    names = _entry_names(cache)
    assert len(names) == 1 and names[0].isascii() and ' ' not in names[0]   # the Bangla tokenizer name is made safe
    assert list_cache_entries(cache)[0]['status'] == 'ok'


# ----------------------------------------------------------------------------------------------- tampering
@pytest.fixture(scope='module')
def small(real):
    c, y, tok = real
    return c[:800], y[:800], tok


def _entry(cache):
    return Path(cache) / _entry_names(cache)[0]


def _edit_manifest(entry, fn):
    m = json.loads((entry / 'manifest.json').read_text(encoding='utf-8'))
    fn(m)
    (entry / 'manifest.json').write_text(json.dumps(m), encoding='utf-8')


LIES = {
    'pad_token_id': lambda m: m.update(pad_token_id=m['pad_token_id'] + 1),
    'mask_token_id': lambda m: m.update(mask_token_id=7),
    'special_token_ids': lambda m: m.update(special_token_ids=[]),
    'max_length': lambda m: m.update(max_length=m['max_length'] * 2),
    'ids checksum': lambda m: m['arrays']['ids'].update(checksum='0' * 32),
    'labels shape': lambda m: m['arrays']['labels'].update(shape=[m['arrays']['labels']['shape'][0] - 1, 5]),
    'ids dtype': lambda m: m['arrays']['ids'].update(dtype='<i8'),
    'format version': lambda m: m.update(format_version=99),
    'arrays entry missing': lambda m: m['arrays'].pop('offsets'),
    'key inputs': lambda m: m['key_inputs'].update(max_length=1),
    'manifest is a list': lambda m: (m.clear(), m.update(x=[1])),
}


@pytest.mark.parametrize('lie', list(LIES))
def test_manifest_edited_to_lie_is_detected_or_harmless(lie, small, tmp_path):
    comments, labels, tok = small
    ref = tokenize_to_data(comments, labels, tok, 64)
    get_or_create_tokenized_dataset(comments, labels, tok, 64, tmp_path, verbose=False)
    _edit_manifest(_entry(tmp_path), LIES[lie])
    with warnings.catch_warnings(record=True):
        warnings.simplefilter('always')
        d = get_or_create_tokenized_dataset(comments, labels, tok, 64, tmp_path, verbose=False)
    _same(d, ref)                                                    # a lie is either caught (and rebuilt) or changes nothing


def _swap(entry, a, b):
    os.rename(entry / f'{a}.npy', entry / 'x'); os.rename(entry / f'{b}.npy', entry / f'{a}.npy'); os.rename(entry / 'x', entry / f'{b}.npy')


def _replace_with_consistent_fake(entry, name):
    "Replace an array by another of the same dtype and shape, and fix the manifest's checksum to match: an informed forger."
    m = json.loads((entry / 'manifest.json').read_text(encoding='utf-8'))
    a = np.load(entry / f'{name}.npy')
    fake = a[::-1].copy() if name != 'offsets' else a
    np.save(entry / f'{name}.npy', fake, allow_pickle=False)
    m['arrays'][name]['checksum'] = bs.checksum(fake)
    (entry / 'manifest.json').write_text(json.dumps(m), encoding='utf-8')


SWAPS = {'ids <-> labels': lambda e: _swap(e, 'ids', 'labels'), 'offsets <-> labels': lambda e: _swap(e, 'offsets', 'labels'),
         'ids <-> offsets': lambda e: _swap(e, 'ids', 'offsets'),
         'ids from another entry': None, 'manifest from another entry': None}


@pytest.mark.parametrize('swap', list(SWAPS))
def test_arrays_swapped_are_detected_and_rebuilt(swap, small, tmp_path):
    comments, labels, tok = small
    ref = tokenize_to_data(comments, labels, tok, 64)
    get_or_create_tokenized_dataset(comments, labels, tok, 64, tmp_path, verbose=False)
    entry = _entry(tmp_path)
    if SWAPS[swap]: SWAPS[swap](entry)
    else:                                                            # a file copied in from the entry of other comments
        other = tmp_path / 'other'
        get_or_create_tokenized_dataset(comments[::-1], labels[::-1], tok, 64, other, verbose=False)
        f = 'ids.npy' if swap.startswith('ids') else 'manifest.json'
        shutil.copy(_entry(other) / f, entry / f)
    with pytest.warns(UserWarning, match='corrupt'):
        d = get_or_create_tokenized_dataset(comments, labels, tok, 64, tmp_path, verbose=False)
    _same(d, ref)


def test_random_byte_flips_are_detected_or_harmless(small, tmp_path):
    "40 single-byte flips at random offsets of random files of the entry: the result is always the uncached one."
    comments, labels, tok = small
    ref = tokenize_to_data(comments, labels, tok, 64)
    rng = random.Random(11)
    detected = 0
    for i in range(40):
        get_or_create_tokenized_dataset(comments, labels, tok, 64, tmp_path, verbose=False)
        entry = _entry(tmp_path)
        f = entry / rng.choice(['ids.npy', 'offsets.npy', 'labels.npy', 'span_codes.npy', 'span_exceptions.npy',
                                'manifest.json'])
        data = bytearray(f.read_bytes())
        pos = rng.randrange(len(data))
        data[pos] ^= 1 << rng.randrange(8)
        f.write_bytes(bytes(data))
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter('always')
            d = get_or_create_tokenized_dataset(comments, labels, tok, 64, tmp_path, verbose=False)
        detected += any('corrupt' in str(x.message) for x in w)
        _same(d, ref)
        del d
    print(f'40 byte flips: {detected} detected and rebuilt, {40 - detected} harmless (e.g. in JSON whitespace or stats)')
    assert detected >= 25
