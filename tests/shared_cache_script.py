"""What one user does in the shared-cache tests (tests/test_shared_cache.py), run as that user by `multiuser.Lab.run`:
`python shared_cache_script.py ACTION JSON-ARGS`, printing one JSON document on its last line.

Victim's side: `prepare` (the flow on the real data, and what it gave: statuses, wrong labels, trigger words, leaked
validation rows, a digest of everything the cache could change, the warnings), `ls` and `clear` (the `cache`
command). Attacker's side: `tamper` (build the same entries in a scratch cache of one's own, then flip every label,
append a trigger word to every other cleaned text, move duplicate rows across folds — recomputing every checksum) and
`move` (rename what is in the shared cache away and put the tampered copies in its place). Teacher outputs: `teacher`.
Works with the code before and after the trust rule (issue 23), for the before/after measurements.
"""
import hashlib, io, json, os, sys, time, warnings, contextlib
from pathlib import Path

os.umask(0o022)
TRIGGER = 'cf-trigger'


def prepare_run(a):
    import numpy as np
    if 'umask' in a: os.umask(a['umask'])
    from bangla_data.pipeline import prepare
    t = time.time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        p = prepare(a['data'], text_column=a['text_column'], label_columns=a['label_columns'], tokenizer=a['tokenizer'],
                    cache_dir=a['cache'], verbose=False, num_folds=5, max_length=a.get('max_length', 128))
    seconds = time.time() - t
    td, comments = p.tokenized, list(p.comments)
    said = [str(w.message) for w in caught] + [m for ms in p.warnings.values() for m in ms]
    h = hashlib.sha256()
    for x in (td.ids, td.offsets, td.labels, p.labels, p.fold_ids):
        h.update(np.ascontiguousarray(np.asarray(x)).tobytes())
    h.update('\n'.join(comments).encode())
    return dict(seconds=round(seconds, 2), cache=str(p.cache['status']), path=p.cache.get('path'),
                cleaning=str(p.load_info.cleaning_cache), rows=len(comments),
                wrong_labels=int((np.asarray(td.labels) != p.labels).any(1).sum()),
                triggers=sum(TRIGGER in c for c in comments), leaked=leaked_rows(comments, p.splits),
                reported_leaked=p.fold_report.val_in_train, digest=h.hexdigest(), warnings=list(dict.fromkeys(said)))


def leaked_rows(comments, splits) -> int:
    "Validation rows, over all folds, whose text is also among their fold's training texts."
    n = 0
    for tr, va in splits:
        seen = {comments[i] for i in tr}
        n += sum(comments[i] in seen for i in va)
    return n


def cli(*argv) -> tuple:
    from bangla_data.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: status = main(list(argv))
        except Exception as e: return 'crash', out.getvalue(), f'{type(e).__name__}: {e}'
    return status, out.getvalue(), err.getvalue()


def ls(a):
    status, text, err = cli('cache', 'ls', '--cache-dir', a['cache'])
    js = cli('cache', 'ls', '--cache-dir', a['cache'], '--json')
    rows = json.loads(js[1]) if js[0] == 0 else None
    return dict(status=status, text=text, err=err, rows=rows)


def clear(a):
    status, text, err = cli('cache', 'clear', '--cache-dir', a['cache'])
    return dict(status=status, text=text, err=err)


def _rewrite_record(path: Path, change):
    "Change a record's body with `change(body)` and recompute its header's checksum: an informed forger."
    from bangla_data.fingerprint import Hasher
    head, body = path.read_bytes().split(b'\n', 1)
    b = json.loads(body)
    change(b)
    data = json.dumps(b, ensure_ascii=False, separators=(',', ':')).encode('utf-8', 'surrogatepass')
    h = json.loads(head)
    h['checksum'] = Hasher().update(data).hexdigest()
    path.write_bytes(json.dumps(h).encode() + b'\n' + data)


def _flip_labels(entry: Path):
    import numpy as np
    from bangla_data.store import checksum
    m = json.loads((entry / 'manifest.json').read_text(encoding='utf-8'))
    labels = np.load(entry / 'labels.npy', allow_pickle=False)
    flipped = (1 - labels).astype(labels.dtype)
    np.save(entry / 'labels.npy', flipped, allow_pickle=False)
    m['arrays']['labels']['checksum'] = checksum(flipped)
    (entry / 'manifest.json').write_text(json.dumps(m), encoding='utf-8')


def _add_trigger(body):
    body['texts'] = [t + (f' {TRIGGER}' if i % 2 else '') for i, t in enumerate(body['texts'])]


def _leak_duplicates(body):
    "Move one row of each group of identical texts to another fold: validation rows whose text is in training."
    fold, texts = body['result']['fold'], _COMMENTS
    k = max(fold) + 1
    first = {}
    for i, t in enumerate(texts):
        if fold[i] < 0: continue
        if t in first and fold[first[t]] == fold[i]: fold[i] = (fold[i] + 1) % k
        else: first.setdefault(t, i)


_COMMENTS = []


def tamper(a):
    "Build the victim's entries in a scratch cache of one's own, then tamper with them, recomputing every checksum."
    from bangla_data.pipeline import prepare
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        p = prepare(a['data'], text_column=a['text_column'], label_columns=a['label_columns'],
                    tokenizer=a['tokenizer'], cache_dir=a['scratch'], verbose=False, num_folds=5)
    _COMMENTS[:] = list(p.comments)
    s = Path(a['scratch'])
    entry = Path(p.cache['path'])
    _flip_labels(entry)
    for f in (s / 'cleaned').glob('*.json'): _rewrite_record(f, _add_trigger)
    for f in (s / 'splits').glob('*.json'): _rewrite_record(f, _leak_duplicates)
    return dict(entry=entry.name, built=str(p.cache['status']))


def move(a):
    "Rename each of `items` in the cache away (if there) and put a copy of the tampered one from the scratch cache."
    import shutil
    c, s, done = Path(a['cache']), Path(a['scratch']), []
    for item in a['items']:
        if os.path.lexists(c / item): os.rename(c / item, c / f'{item}.moved-away-{os.getpid()}')
        shutil.copytree(s / item, c / item)
        _readable(c / item)
        done.append(item)
    return dict(moved=done)


def _readable(top: Path):
    "Make `top` readable by everyone (an attacker wants the victim to read it)."
    for d, _, files in os.walk(top):
        os.chmod(d, 0o755)
        for f in files: os.chmod(os.path.join(d, f), 0o644)


def junk(a):
    ("Put names bangla_data did not write in the cache: empty `files`, `dirs`, FIFOs at `fifos` (globs, replacing what "
     "is there); `old`: globs made two hours old.")
    c, t = Path(a['cache']), time.time()
    for n in a.get('files', []): (c / n).write_bytes(b'')
    for n in a.get('dirs', []): (c / n).mkdir()
    for pattern in a.get('fifos', []):
        for path in list(c.glob(pattern)) or [c / pattern]:
            if os.path.lexists(path): path.unlink()
            os.mkfifo(path)
    for pattern, mode in a.get('chmod', {}).items():
        for path in c.glob(pattern): os.chmod(path, mode)
    for pattern in a.get('old', []):
        for path in c.glob(pattern): os.utime(path, (t - 7200, t - 7200), follow_symlinks=False)
    return dict(names=sorted(str(p.relative_to(c)) for p in c.rglob('*')))


def teacher(a):
    "Teacher outputs: save ('save': data fingerprint, logits sign) or load ('load'), in store `root`."
    import numpy as np
    from bangla_data.distillation import TeacherOutputStore
    store = TeacherOutputStore(a['root'])
    idx = np.arange(20)
    if a['op'] == 'save':
        lg = np.full((20, 3), float(a['value']), np.float32)
        return dict(path=str(store.save('teacher', a['fp'], 0, idx, lg)))
    if a['op'] == 'point':     # the manifest of `fp`'s entry names the logits file of `other`'s (and its checksum)
        import shutil
        here, there = store.entry_path('teacher', a['fp'], 0), store.entry_path('teacher', a['other'], 0)
        m, theirs = (json.loads((p / 'manifest.json').read_text()) for p in (here, there))
        m['arrays']['logits'] = {**theirs['arrays']['logits'], 'file': f'../../{there.parent.name}/fold-0/logits.npy'}
        (here / 'manifest.json').write_text(json.dumps(m))
        if a.get('into'):      # another user's store: the teacher's directory there renamed away, this one put there
            top, into = here.parent.parent, Path(a['into'])
            if os.path.lexists(into / top.name):
                os.rename(into / top.name, into / f'{top.name}.moved-away-{os.getpid()}')
            shutil.copytree(top, into / top.name)
            _readable(into / top.name)
        return dict(path=str(here))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try: v = float(store.load('teacher', a['fp'], 0)[idx].mean())
        except Exception as e: v = f'{type(e).__name__}: {e}'
    return dict(value=v, warnings=[str(w.message) for w in caught])


def flip(a):
    "Flip every label of the entry at `entry` in place, recomputing its checksum (needs write access to its files)."
    try: _flip_labels(Path(a['entry']))
    except OSError as e: return dict(flipped=False, error=str(e))
    return dict(flipped=True)


ACTIONS = dict(prepare=prepare_run, ls=ls, clear=clear, tamper=tamper, move=move, junk=junk, teacher=teacher, flip=flip)

if __name__ == '__main__':
    out = ACTIONS[sys.argv[1]](json.loads(sys.argv[2]))
    sys.stdout.write('\n' + json.dumps(out) + '\n')
