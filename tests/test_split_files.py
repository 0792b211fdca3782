"""Issue 23 item 4: split files and prediction exports that are safe to hand to others.

- The pair (CSV + sidecar) under a crash: the save is killed (SIGKILL, in a forked child) at every flush and rename it
  makes, and fails with a full disk at each of them in-process; after each, `read_splits` gives exactly the old split
  or the new one, never an error — from an old pair of this format and of format 2 (an older bangla_data).
- A reader racing a writer that saves two splits in turn reads one of the two every time.
- Hostile ids and row labels (a bare CR, `=HYPERLINK(…)`, `-1`, `'=`, tab, `@`, `+`) round-trip through a split file,
  and no cell of the file starts like a formula; the same for texts through `save_predictions` / `read_predictions`
  (also for every comment of the real data: `shared`).
- Format-2 files (cells as written, no escaping) are still read, their cells unchanged.
- Split files and prediction exports are created as your umask says (0644 under 022, 0600 under 077).
Each test prints what it measured.
"""
import csv, errno, io, json, os, signal, time, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bangla_data.splits as sp
from bangla_data import BanglaDataError
from bangla_data.loading import load_and_preprocess_data
from bangla_data.results import OutOfFold, predictions_table, read_predictions, save_predictions
from bangla_data.sample import SAMPLE_PATH
from bangla_data.splits import (FORMULA_STARTS, csv_cells, make_splits, read_splits, save_splits, sidecar_path,
                                split_file_frame)
from conftest import CYBERBULLY_CSV, CYBERBULLY_LABELS

HOSTILE = ['=HYPERLINK("http://evil.example/?q=1","click")', '=1+1', '+1', '-1', '-', '@SUM(A1)', '\tx', '\rx',
           "'=x", "'", "''", "'-1", 'a\rb', 'a\nb', 'a\r\nb', '\r', '"q",x', 'a,b', ' =1', 'ক=খ', 'NA', 'null',
           '\x00', '\u2028', ' sp ', '-1.5', '+৫']


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


@pytest.fixture(scope="module")
def sample():
    "The bundled sample, two different splits of it (seeds 1 and 2) and hostile ids (one per row, all distinct)."
    c, y = _quiet(load_and_preprocess_data, SAMPLE_PATH, verbose=False)
    old = _quiet(make_splits, c, y, 5, test_size=0.1, seed=1)[2]
    new = _quiet(make_splits, c, y, 5, test_size=0.1, seed=2)[2]
    assert (old != new).sum() > 100
    ids = [HOSTILE[i % len(HOSTILE)] + ('' if i < len(HOSTILE) else str(i)) for i in range(len(c))]
    return c, y, np.arange(len(c)) + 2, old, new, ids


def _format_2_pair(path, fold, rows, c, y, ids=None):
    "A split file as bangla_data wrote it before the escaping (format 2): pandas' CSV, cells raw, two plain writes."
    data = split_file_frame(fold, rows, c, y, ids).to_csv(index=False, lineterminator='\n').encode('utf-8')
    meta = sp._split_meta(np.asarray(fold), c, y, ids, data, {})
    meta.update(format=2, unique_rows=True); meta['checksum'] = sp._meta_checksum(meta)
    path.write_bytes(data); sidecar_path(path).write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    return path


def _old_pair(kind, path, s):
    c, y, rows, old, _, _ = s
    if kind == 'format 2': return _format_2_pair(path, old, rows, c, y)
    return save_splits(path, old, rows, c, y)


def _crash_points(path, s):
    "How many flushes and renames a save over an existing pair makes (each is a point where it can be killed)."
    calls, real_replace, real_fsync = [], os.replace, os.fsync
    os.replace = lambda *a, **k: (calls.append('replace'), real_replace(*a, **k))[1]
    os.fsync = lambda *a, **k: (calls.append('fsync'), real_fsync(*a, **k))[1]
    try: save_splits(path, s[4], s[2], s[0], s[1])
    finally: os.replace, os.fsync = real_replace, real_fsync
    return calls


def _killed_save(path, s, k):
    "Save the new split in a forked child that SIGKILLs itself at its k-th flush or rename; the child's wait status."
    pid = os.fork()
    if pid == 0:
        try:
            n, real_replace, real_fsync = [0], os.replace, os.fsync
            def hook(real):
                def call(*a, **kw):
                    n[0] += 1
                    if n[0] == k: os.kill(os.getpid(), signal.SIGKILL)
                    return real(*a, **kw)
                return call
            os.replace, os.fsync = hook(real_replace), hook(real_fsync)
            save_splits(path, s[4], s[2], s[0], s[1])
        finally: os._exit(0)
    return os.waitpid(pid, 0)[1]


@pytest.mark.parametrize('kind', ['format 3', 'format 2'])
def test_a_save_killed_at_any_point_leaves_the_old_pair_or_the_new(kind, sample, tmp_path):
    c, y, rows, old, new, _ = sample
    path = tmp_path / 's.csv'
    _old_pair(kind, path, sample)
    before = (path.read_bytes(), sidecar_path(path).read_bytes())
    _old_pair(kind, tmp_path / 'c.csv', sample)
    points = _crash_points(tmp_path / 'c.csv', sample)          # the same save, on a copy: its flushes and renames
    seen = []
    for k in range(1, len(points) + 2):                        # the last: not killed
        path.write_bytes(before[0]); sidecar_path(path).write_bytes(before[1])
        status = _killed_save(path, sample, k)
        assert os.WIFSIGNALED(status) == (k <= len(points)), (k, status)
        got = read_splits(path, rows, c, y)                    # never an error
        assert np.array_equal(got, old) or np.array_equal(got, new), k
        seen.append('old' if np.array_equal(got, old) else 'new')
    print(f"{kind}: {len(points)} crash points {points}; killed at each: {seen}")
    assert seen[0] == 'old' and seen[-1] == 'new' and set(seen) == {'old', 'new'}
    assert seen == sorted(seen, key=['old', 'new'].index)      # once new, never old again


def test_a_save_failing_at_any_point_leaves_the_old_pair_or_the_new_and_no_temporary_file(sample, tmp_path,
                                                                                          monkeypatch):
    c, y, rows, old, new, _ = sample
    path = save_splits(tmp_path / 's.csv', old, rows, c, y)
    before = (path.read_bytes(), sidecar_path(path).read_bytes())
    points = _crash_points(tmp_path / 's.csv', sample)
    seen = []
    for k in range(1, len(points) + 1):
        path.write_bytes(before[0]); sidecar_path(path).write_bytes(before[1])
        n, real_replace, real_fsync = [0], os.replace, os.fsync
        def hook(real):
            def call(*a, **kw):
                n[0] += 1
                if n[0] == k: raise OSError(errno.ENOSPC, 'No space left on device (injected)')
                return real(*a, **kw)
            return call
        with monkeypatch.context() as m:
            m.setattr(os, 'replace', hook(real_replace)); m.setattr(os, 'fsync', hook(real_fsync))
            try: save_splits(path, new, rows, c, y)
            except OSError: pass
        got = read_splits(path, rows, c, y)
        assert np.array_equal(got, old) or np.array_equal(got, new), k
        seen.append('old' if np.array_equal(got, old) else 'new')
        assert sorted(os.listdir(tmp_path)) == ['s.csv', 's.csv.json'], (k, os.listdir(tmp_path))
    print(f"a full disk at each of {len(points)} points: {seen}")
    assert 'old' in seen


def test_a_reader_racing_a_writer_reads_one_of_the_two_splits(sample, tmp_path, monkeypatch):
    c, y, rows, old, new, _ = sample
    real_read = Path.read_bytes
    def slow_read(self):                                       # widen the window between the reads of the two files
        data = real_read(self)
        if self.suffix == '.json': time.sleep(0.002)
        return data
    monkeypatch.setattr(Path, 'read_bytes', slow_read)
    path = save_splits(tmp_path / 's.csv', old, rows, c, y)
    stop = tmp_path / 'stop'
    pid = os.fork()
    if pid == 0:
        try:
            for i in range(200):
                if stop.exists(): break
                save_splits(path, (new, old)[i % 2], rows, c, y)
        finally: os._exit(0)
    reads, done = {'old': 0, 'new': 0}, False
    try:
        while not done:
            done = os.waitpid(pid, os.WNOHANG)[0] != 0
            got = read_splits(path, rows, c, y)
            reads['old' if np.array_equal(got, old) else 'new' if np.array_equal(got, new) else 'other'] += 1
    finally:
        stop.touch()
        if not done: os.waitpid(pid, 0)
    print(f"reads during 200 saves: {reads}")
    assert set(reads) == {'old', 'new'} and sum(reads.values()) > 10


def _spreadsheet_cells(raw: bytes) -> list:
    "Every cell of a CSV as a spreadsheet's CSV import sees it (quotes removed, nothing unescaped)."
    return [x for r in csv.reader(io.StringIO(raw.decode('utf-8'), newline='')) for x in r]


def test_hostile_ids_and_row_labels_round_trip_and_no_cell_is_a_formula(sample, tmp_path):
    c, y, _, old, _, ids = sample
    rows = np.array([f'{ids[-1 - i]}' for i in range(len(c))], dtype=object)      # DataFrame index labels, hostile too
    path = save_splits(tmp_path / 's.csv', old, rows, c, y, ids=ids)
    assert np.array_equal(read_splits(path, rows, c, y, ids=ids), old)
    table = csv_cells(path.read_bytes())
    assert table['id'].tolist() == ids and table['row'].tolist() == rows.tolist()
    cells = _spreadsheet_cells(path.read_bytes())
    formulas = [x for x in cells if x[:1] in FORMULA_STARTS]
    escaped = sum(x[:1] == "'" for x in cells)
    print(f"{len(ids)} ids ({sum(i[:1] in FORMULA_STARTS for i in ids)} formula-like, "
          f"{sum(chr(13) in i for i in ids)} with a CR): {escaped} cells escaped, {len(formulas)} formulas")
    assert not formulas and escaped >= 2 * sum(i[:1] in FORMULA_STARTS + ("'",) for i in ids)
    with pytest.raises(BanglaDataError, match="has id"):                       # the ids are compared, not ignored
        read_splits(path, rows, c, y, ids=ids[1:] + ids[:1])


def test_negative_and_whole_number_ids_still_match(sample, tmp_path):
    c, y, rows, old, _, _ = sample
    ids = [-i for i in range(len(c))]
    path = save_splits(tmp_path / 's.csv', old, rows, c, y, ids=ids)
    assert "'-1," in path.read_text()
    assert np.array_equal(read_splits(path, rows, c, y, ids=[str(i) for i in ids]), old)   # '-1' as read from a CSV
    assert np.array_equal(read_splits(path, rows, c, y, ids=[float(i) for i in ids]), old)  # -1.0 from a float column


def test_format_2_files_are_still_read_with_their_cells_as_written(sample, tmp_path):
    c, y, rows, old, _, _ = sample
    ids = [f"'={i}" for i in range(len(c))]                 # raw in format 2: a leading ' is part of the id
    path = _format_2_pair(tmp_path / 's.csv', old, rows, c, y, ids)
    assert np.array_equal(read_splits(path, rows, c, y, ids=ids), old)
    meta = json.loads(sidecar_path(path).read_text()); meta['format'] = 4
    sidecar_path(path).write_text(json.dumps(meta))
    with pytest.raises(BanglaDataError, match="format 2 or 3 .got 4.; a newer bangla_data"):
        read_splits(path, rows, c, y)


@pytest.mark.parametrize('umask,mode', [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_split_files_and_exports_are_made_as_the_umask_says(umask, mode, sample, tmp_path):
    c, y, rows, old, new, _ = sample
    (tmp_path / 's.csv').write_text('x'); os.chmod(tmp_path / 's.csv', 0o600)      # an older file, 0600
    was = os.umask(umask)
    try:
        path = save_splits(tmp_path / 's.csv', old, rows, c, y)
        pred = save_predictions(tmp_path / 'p.csv', predictions_table([0, 1], [[.1, .2, .3, .4, .5]] * 2, c, y,
                                                                      list('abcde'), rows))
    finally: os.umask(was)
    modes = [oct(os.stat(p).st_mode & 0o777) for p in (path, sidecar_path(path), pred)]
    print(f"umask {oct(umask)}: {modes}")
    assert modes == [oct(mode)] * 3


def test_oof_and_predictions_exports_round_trip_hostile_texts(sample, tmp_path):
    c, y, rows, old, _, ids = sample
    raw = [ids[(i * 7) % len(ids)] for i in range(len(c))]
    labels = ['=a', 'b', 'c', 'd', 'e']
    mk = lambda i, p, f: predictions_table(i, p, c, y, labels, rows, ids=ids, raw_texts=raw, fold=f)
    oof = OutOfFold(mk, np.flatnonzero(old >= 0), len(c), fold_of=old)
    rng = np.random.default_rng(0)
    for k in range(5):
        va = np.flatnonzero(old == k)
        oof.add(va, rng.random((len(va), 5)), fold=k)
    path = oof.save(tmp_path / 'oof.csv')
    back, table = read_predictions(path), oof.finalize()
    pd.testing.assert_frame_equal(back, table, check_dtype=False)          # texts, ids, labels, exact probabilities
    formulas = [x for x in _spreadsheet_cells(path.read_bytes()) if x[:1] in FORMULA_STARTS]
    print(f"OOF table of {len(table)} rows x {len(table.columns)} columns round-trips; {len(formulas)} formulas")
    assert not formulas


@pytest.mark.shared
def test_every_real_comment_round_trips_through_a_predictions_export(tmp_path):
    df = pd.read_csv(CYBERBULLY_CSV, dtype=str, keep_default_na=False)
    texts = df['comment'].tolist()
    table = pd.DataFrame({'index': np.arange(len(texts)), 'row': np.arange(len(texts)) + 2, 'text': texts,
                          'prob_bully': np.linspace(0, 1, len(texts))})
    path = save_predictions(tmp_path / 'p.csv', table)
    pd.testing.assert_frame_equal(read_predictions(path), table, check_dtype=False)
    lead = sum(t[:1] in FORMULA_STARTS + ("'",) for t in texts)
    formulas = [x for x in _spreadsheet_cells(path.read_bytes()) if x[:1] in FORMULA_STARTS]
    print(f"{len(texts):,} real comments round-trip; {lead} start like a formula or with ', escaped; "
          f"{sum(chr(13) in t or chr(10) in t for t in texts)} hold a line break")
    assert not formulas and len(texts) > 10_000


def test_lone_surrogates_are_refused_by_row_and_column_and_nothing_is_written(sample, tmp_path):
    "A lone surrogate ('\\ud800': a DataFrame can hold one, no UTF-8 file can) in an id, a row label or a text: a "
    "`BanglaDataError` naming the column and row, no file (nor temporary) left behind; the old pair stays readable."
    c, y, rows, old, _, ids = sample
    path = save_splits(tmp_path / 's.csv', old, rows, c, y, ids=ids)
    before = path.read_bytes(), sidecar_path(path).read_bytes()
    bad_ids = list(ids); bad_ids[3] = 'x\ud800'
    with pytest.raises(BanglaDataError, match=rf"s.csv: the column 'id' at row {rows[3]}, line 5 of the file, holds a "
                                              r"lone surrogate .*replace it in your data"):
        save_splits(path, old, rows, c, y, ids=bad_ids)
    bad_rows = np.array(list(rows), dtype=object); bad_rows[0] = '\udc80'      # a DataFrame index label
    with pytest.raises(BanglaDataError, match=r"the column 'row' at line 2 of the file, holds a lone surrogate"):
        save_splits(path, old, bad_rows, c, y)
    assert (path.read_bytes(), sidecar_path(path).read_bytes()) == before
    assert np.array_equal(read_splits(path, rows, c, y, ids=ids), old)
    assert sorted(os.listdir(tmp_path)) == ['s.csv', 's.csv.json']
    texts = list(c); texts[1] = 'ক\ud800খ'
    table = predictions_table(np.arange(3), np.full((3, y.shape[1]), .5), c, y, [f'l{j}' for j in range(y.shape[1])],
                              rows, raw_texts=texts)
    assert table['text'].tolist()[1] == 'ক\ud800খ'                              # the table holds it; the file cannot
    with pytest.raises(BanglaDataError, match=rf"p.csv: the column 'text' at row {rows[1]}, line 3 of the file"):
        save_predictions(tmp_path / 'p.csv', table)
    assert not (tmp_path / 'p.csv').exists()
