"""Issue 14: a held-out test split, split files others can reuse (round trip, stale / tampered / mismatched files
refused), the file's own split column, and per-row fold ids on the command line."""
import json, os, subprocess, sys, warnings
import numpy as np
import pandas as pd
import pytest

from bangla_data import BanglaDataError, prepare
from bangla_data.duplicates import text_ids
from bangla_data.sample import SAMPLE_PATH
from bangla_data.splits import TEST_FOLD, read_splits, sidecar_path
from bangla_data.sample import sample_tokenizer
from conftest import CYBERBULLY_CSV, CYBERBULLY_LABELS, ROOT

CLI = [sys.executable, "-c", "import sys; from bangla_data.cli import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def tok():
    return sample_tokenizer()


def _prep(data=None, **kw):
    kw.setdefault("verbose", False); kw.setdefault("report_unk", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prepare(data, tokenizer=sample_tokenizer(), **kw)


def _batches(loader):
    return [{k: v.clone() for k, v in b.items()} for b in loader]


def _same_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert sorted(x) == sorted(y)
        for k in x: assert (x[k] == y[k]).all(), k


def test_test_rows_are_in_no_fold(tmp_path):
    p = _prep(cache_dir=tmp_path, test_size=0.1)
    n, test = len(p.comments), p.test_indices
    assert 0.08 * n <= len(test) <= 0.12 * n
    for tr, va in p.splits:
        assert not np.intersect1d(tr, test).size and not np.intersect1d(va, test).size
    val = np.concatenate([va for _, va in p.splits])
    assert np.array_equal(np.sort(np.concatenate([val, test])), np.arange(n))     # every row: one fold or test
    tid = text_ids(p.comments)
    rest = np.setdiff1d(np.arange(n), test)
    assert not np.intersect1d(tid[test], tid[rest]).size                        # no text on both sides
    assert (p.fold_ids[test] == TEST_FOLD).all()
    assert "test" in p.fold_report.table.index and p.fold_report.table.loc["test", "val_in_train"] == 0
    batches = list(p.test_loader(batch_size=16))
    idx = np.concatenate([b["index"].numpy() for b in batches])
    assert np.array_equal(idx, test)                                            # in row order, every test row once
    assert p.to_dict()["splits"]["fold"].count("test") == len(test)


def test_split_file_round_trip_identical_splits_and_batches(tmp_path):
    p = _prep(cache_dir=tmp_path, test_size=0.15, seed=7)
    path = p.save_splits(tmp_path / "splits.csv")
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["settings"]["seed"] == 7 and meta["test_rows"] == len(p.test_indices) and meta["version"]
    lines = path.read_text().splitlines()
    assert lines[0] == "row,text_hash,labels,fold" and len(lines) == len(p.comments) + 1
    q = _prep(cache_dir=tmp_path, splits=path, seed=7)
    assert np.array_equal(q.test_indices, p.test_indices)
    for (a, b), (c, d) in zip(p.splits, q.splits):
        assert np.array_equal(a, c) and np.array_equal(b, d)
    for k in (0, 3):
        (ta, va, wa), (tb, vb, wb) = p.fold(k, batch_size=16), q.fold(k, batch_size=16)
        _same_batches(_batches(ta), _batches(tb)); _same_batches(_batches(va), _batches(vb))
        assert (wa == wb).all()
    _same_batches(_batches(p.test_loader(16)), _batches(q.test_loader(16)))


def test_stale_tampered_and_mismatched_split_files_are_refused(tmp_path):
    df = pd.read_csv(SAMPLE_PATH)
    p = _prep(df, cache_dir=tmp_path, test_size=0.1)
    path = p.save_splits(tmp_path / "s.csv")
    original = path.read_text()
    changed = df.copy(); changed.loc[5, "comment_text"] = "একেবারে নতুন একটি মন্তব্য"
    with pytest.raises(BanglaDataError, match="stale: the data's texts changed"):
        _prep(changed, cache_dir=tmp_path, splits=path)
    relabelled = df.copy(); relabelled.loc[5, "bully"] = 1 - relabelled.loc[5, "bully"]
    with pytest.raises(BanglaDataError, match="labels changed"):
        _prep(relabelled, cache_dir=tmp_path, splits=path)
    with pytest.raises(BanglaDataError, match="rows the data does not have"):
        _prep(df.drop(index=[3]), cache_dir=tmp_path, splits=path)
    more = pd.concat([df, df.iloc[[0]].assign(comment_text="আরও একটি")], ignore_index=True)
    with pytest.raises(BanglaDataError, match="not in the file"):
        _prep(more, cache_dir=tmp_path, splits=path)
    lines = original.splitlines()
    row, text_hash, labels, fold = lines[1].split(",")
    moved = f"{row},{text_hash},{labels},{'test' if fold != 'test' else '0'}"
    path.write_text("\n".join([lines[0], moved] + lines[2:]) + "\n")
    with pytest.raises(BanglaDataError, match="edited after save_splits wrote it"):
        _prep(df, cache_dir=tmp_path, splits=path)
    path.write_text("\n".join(lines + [f"{row},{text_hash},{labels},1"]) + "\n")
    with pytest.raises(BanglaDataError, match=f"row {row} is in two places"):
        _prep(df, cache_dir=tmp_path, splits=path)
    path.write_text(original)
    meta = json.loads(sidecar_path(path).read_text()); meta["settings"]["seed"] = 1
    sidecar_path(path).write_text(json.dumps(meta))
    with pytest.raises(BanglaDataError, match="edited after"):
        _prep(df, cache_dir=tmp_path, splits=path)
    with pytest.raises(BanglaDataError, match="give only one of"):
        _prep(df, cache_dir=tmp_path, splits=path, test_size=0.1)


def test_split_column_takes_the_files_assignment(tmp_path):
    df = pd.read_csv(SAMPLE_PATH)
    df["split"] = np.where(np.arange(len(df)) % 10 == 0, "test", np.where(np.arange(len(df)) % 10 == 1, "val", "train"))
    p = _prep(df, cache_dir=tmp_path, split_column="split", group_duplicates=False)
    assert p.num_folds == 1
    assert np.array_equal(p.test_indices, np.flatnonzero(df["split"] == "test"))
    assert np.array_equal(p.splits[0][1], np.flatnonzero(df["split"] == "val"))
    df2 = df.assign(split=df["split"].replace("val", "train"))
    q = _prep(df2, cache_dir=tmp_path, split_column="split", num_folds=3)
    assert q.num_folds == 3 and np.array_equal(q.test_indices, np.flatnonzero(df2["split"] == "test"))
    bad = df.copy(); bad.loc[[4, 9], "split"] = "dev"
    with pytest.raises(BanglaDataError, match=r"value\(s\) \['dev'\] at rows 4, 9"):
        _prep(bad, cache_dir=tmp_path, split_column="split")
    with pytest.raises(BanglaDataError, match="split column 'nope' not found"):
        _prep(df, cache_dir=tmp_path, split_column="nope")


def test_cli_save_splits_splits_and_json_fold_ids(tmp_path):
    env = dict(os.environ, BANGLA_DATA_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1")
    run = lambda *a: subprocess.run(CLI + list(a), capture_output=True, text=True, env=env, cwd=ROOT)
    path = tmp_path / "splits.csv"
    first = run("prepare", "--test-size", "0.2", "--save-splits", str(path), "--json", "--folds", "3")
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    folds = doc["splits"]["fold"]
    assert len(folds) == doc["load"]["rows_kept"] and set(folds) == {0, 1, 2, "test"}
    assert doc["splits"]["row"][:2] == [2, 3]
    assert path.is_file() and sidecar_path(path).is_file()
    second = run("prepare", "--splits", str(path), "--json")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["splits"]["fold"] == folds
    bad = run("prepare", "--splits", str(tmp_path / "missing.csv"))
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.shared
def test_real_data_test_split_is_stratified_and_leak_free(tmp_path, banglabert):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = prepare(CYBERBULLY_CSV, tokenizer=banglabert, text_column="comment", label_columns=CYBERBULLY_LABELS,
                    cache_dir=tmp_path, test_size=0.1, verbose=False, report_unk=False)
    n, test = len(p.comments), p.test_indices
    assert abs(len(test) - 0.1 * n) < 0.01 * n
    tid = text_ids(p.comments)
    assert not np.intersect1d(tid[test], tid[np.setdiff1d(np.arange(n), test)]).size
    assert np.abs(p.labels[test].mean(0) - p.labels.mean(0)).max() < 0.01
    assert p.fold_report.val_in_train == 0
    path = p.save_splits(tmp_path / "cb.csv")
    fold = read_splits(path, p.file_rows(np.arange(n)), p.comments, p.labels)
    assert np.array_equal(fold, p.fold_ids)
