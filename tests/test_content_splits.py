"""Issue 21 items 4 and 5: splits follow the content, and split files carry over.

Item 4: the same rows in any order, with the same seed and options, give every text the same fold and the same test
membership, on every path that places rows (multiclass / multilabel, with and without `group_duplicates`, with
`groups`, the test split, the folds on the non-test rows, the update of a split file).

Item 5: a split file finds rows by content (and id): it works from a DataFrame on the same data read from its file and
the other way round, and across CSV, TSV, xlsx, JSONL and Parquet with an id column (10002, not 10002.0);
`update_splits=True` keeps every row that is still there in its place (a label fix moves nothing), places new rows
keeping the folds balanced and drops removed ones; without it a changed data is refused, naming the option.
"""
import json, os, subprocess, sys, warnings
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bangla_data import BanglaDataError, prepare
from bangla_data.duplicates import text_ids
from bangla_data.kfold import assign_folds, assign_test_split, fold_report, place_new_rows
from bangla_data.loading import load_and_preprocess_data, load_comments
from bangla_data.options import PrepareOptions
from bangla_data.reading import id_values
from bangla_data.sample import SAMPLE_PATH, sample_tokenizer
from bangla_data.splits import TEST_FOLD, make_splits, save_splits, sidecar_path, split_rows
from conftest import CYBERBULLY_CSV, CYBERBULLY_LABELS, ROOT, TOXIC_CSV, TOXIC_LABELS

CLI = [sys.executable, "-c", "import sys; from bangla_data.cli import main; sys.exit(main())"]
PATHS = [(st_, gd, grp) for st_ in ("multiclass", "multilabel") for gd in (True, False) for grp in (False, True)]


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


def _places(comments, labels, place, groups=None):
    "The multiset of (text, labels, group, place): equal for two orders iff every text has the same places."
    g = [None] * len(comments) if groups is None else list(groups)
    return Counter(zip(comments, map(tuple, np.asarray(labels).astype(int).tolist()), g, np.asarray(place).tolist()))


@pytest.fixture(scope="module")
def dup_sample():
    "The bundled sample with a fifth of its rows repeated, half of those copies with a flipped label (both kinds of tie)."
    comments, labels = _quiet(load_and_preprocess_data, SAMPLE_PATH, verbose=False)
    rng = np.random.default_rng(0)
    extra = rng.choice(len(comments), len(comments) // 5, replace=False)
    more = labels[extra].copy()
    more[::2, 0] = 1 - more[::2, 0]
    c = list(comments) + [comments[i] for i in extra]
    y = np.concatenate([labels, more])
    return c, y, (text_ids(c) * 7919) % 60                 # and authors, each writing some of the texts


# ---------------------------------------------------------------------------------------------------- item 4
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1))
def test_any_order_gives_every_text_the_same_places(dup_sample, order_seed):
    c, y, g = dup_sample
    p = np.random.default_rng(order_seed).permutation(len(c))
    cp, yp, gp = [c[i] for i in p], y[p], g[p]
    for st_, gd, grp in PATHS:
        kw = dict(stratification_type=st_, seed=3, group_duplicates=gd)
        a = _quiet(assign_folds, c, y, 4, groups=g if grp else None, **kw)
        b = _quiet(assign_folds, cp, yp, 4, groups=gp if grp else None, **kw)
        assert _places(c, y, a, g) == _places(cp, yp, b, gp), (st_, gd, grp)
        if gd or grp: assert np.array_equal(a[p], b), (st_, gd, grp)   # no exact duplicates left: row by row
        ta = _quiet(assign_test_split, c, y, 0.15, groups=g if grp else None, **kw)
        tb = _quiet(assign_test_split, cp, yp, 0.15, groups=gp if grp else None, **kw)
        assert _places(c, y, ta, g) == _places(cp, yp, tb, gp), (st_, gd, grp)
    _, _, fa = _quiet(make_splits, c, y, 5, "multilabel", test_size=0.15)
    _, _, fb = _quiet(make_splits, cp, yp, 5, "multilabel", test_size=0.15)
    assert np.array_equal(fa[p], fb)


@pytest.mark.shared
@pytest.mark.parametrize("stratification_type", ["multiclass", "multilabel"])
@pytest.mark.parametrize("name", ["cyberbully", "toxic"])
def test_real_data_shuffled_keeps_every_place(name, stratification_type, request):
    "5 folds and a 15% test split on the real data: three shuffles change no text's fold or test membership."
    c, y = request.getfixturevalue(name)
    _, test, fold = _quiet(make_splits, c, y, 5, stratification_type, test_size=0.15)
    for s in range(3):
        p = np.random.default_rng(100 + s).permutation(len(c))
        _, _, fp = _quiet(make_splits, [c[i] for i in p], y[p], 5, stratification_type, test_size=0.15)
        assert np.array_equal(fold[p], fp), int((fold[p] != fp).sum())
    rep = fold_report([(np.flatnonzero((fold != k) & (fold != TEST_FOLD)), np.flatnonzero(fold == k)) for k in range(5)]
                      + [(np.flatnonzero(fold != TEST_FOLD), test)], y, None, c)
    assert rep.val_in_train == 0 and rep.max_deviation_pp <= 1.0, rep


# ---------------------------------------------------------------------------------------------------- item 5
def _prep(data, tokenizer, **kw):
    kw.setdefault("verbose", False); kw.setdefault("report_unk", False)
    return _quiet(prepare, data, tokenizer=tokenizer, **kw)


CB = dict(text_column="comment", label_columns=CYBERBULLY_LABELS)


def test_dataframe_and_path_share_a_split_file(tmp_path, banglabert):
    "A split file from prepare(pd.read_csv(path)) works with prepare(path) (index labels vs file rows), and back."
    df = pd.read_csv(CYBERBULLY_CSV)
    p = _prep(df, banglabert, cache_dir=tmp_path, test_size=0.15, **CB)
    q = _prep(CYBERBULLY_CSV, banglabert, cache_dir=tmp_path, splits=p.save_splits(tmp_path / "df.csv"), **CB)
    assert np.array_equal(q.fold_ids, p.fold_ids) and np.array_equal(q.test_indices, p.test_indices)
    shuffled = df.sample(frac=1, random_state=1)
    r = _prep(shuffled, banglabert, cache_dir=tmp_path, splits=q.save_splits(tmp_path / "path.csv"), **CB)
    back = pd.Series(r.fold_ids, index=r.row_ids).sort_index().to_numpy()
    assert np.array_equal(back, p.fold_ids)                                   # each row kept its place


@pytest.fixture(scope="module")
def id_files(tmp_path_factory):
    "The cyberbully data with an id column pandas holds as floats (one id is missing), in every format."
    d = tmp_path_factory.mktemp("ids")
    df = pd.read_csv(CYBERBULLY_CSV)
    df.insert(0, "cid", (10_000 + np.arange(len(df))).astype(float))
    df.loc[7, "cid"] = np.nan
    df.to_csv(d / "c.csv", index=False); df.to_csv(d / "c.tsv", sep="\t", index=False)
    df.sample(frac=1, random_state=2).to_parquet(d / "c.parquet")             # another order, too
    df.to_json(d / "c.jsonl", orient="records", lines=True, force_ascii=False)
    df.iloc[:3000].to_excel(d / "c3k.xlsx", index=False)                       # xlsx is slow: a part of it, and the
    df.iloc[:3000].to_csv(d / "c3k.csv", index=False)                          # same part as CSV
    assert (d / "c.csv").read_text().splitlines()[1].startswith("10000.0,")   # as pandas writes such a column
    return d, df


def _split_of(path, **kw):
    o = PrepareOptions(**CB, id_column="cid", report_unk=False, **kw)
    data = _quiet(load_comments, path, o)
    return data, _quiet(split_rows, data, o, None)


@pytest.mark.shared
@pytest.mark.parametrize("first,second", [("c.csv", "c.parquet"), ("c.parquet", "c.jsonl"), ("c.jsonl", "c.tsv"),
                                          ("c.tsv", "c.csv"), ("c3k.csv", "c3k.xlsx"), ("c3k.xlsx", "c3k.csv")])
def test_split_files_carry_over_between_formats_with_ids(id_files, tmp_path, first, second):
    d, df = id_files
    a, pa = _split_of(d / first, test_size=0.15, seed=3)
    path = save_splits(tmp_path / "s.csv", pa.fold_ids, a.row_ids, a.comments, a.labels, ids=a.ids)
    written = pd.read_csv(path, dtype=str, keep_default_na=False)["id"]
    assert "10001" in set(written) and not written.str.endswith(".0").any()  # 10001, not 10001.0
    b, pb = _split_of(d / second, splits=path, seed=3)
    by_id = lambda data, part: dict(zip(id_values(data.ids).tolist(), part.fold_ids.tolist()))
    assert by_id(a, pa) == by_id(b, pb)
    assert len(pb.test_idx) == len(pa.test_idx)


def _drop_texts(df, share, seed):
    "Positions of `df`'s rows whose (raw) text is among a random `share` of its distinct texts."
    tid = text_ids(df["comment"].astype(str))
    gone = np.random.default_rng(seed).choice(tid.max() + 1, int(share * (tid.max() + 1)), replace=False)
    return np.flatnonzero(np.isin(tid, gone))


def test_update_splits_label_fix_and_stale_file(tmp_path, banglabert):
    "After a label fix the old file is refused, naming update_splits; with it, 0 rows move; the report says so."
    df = pd.read_csv(CYBERBULLY_CSV)
    p = _prep(df, banglabert, cache_dir=tmp_path, test_size=0.15, **CB)
    path = p.save_splits(tmp_path / "s.csv")
    fixed = df.copy(); fixed.loc[[11, 500], "bully"] = 1 - fixed.loc[[11, 500], "bully"]
    with pytest.raises(BanglaDataError, match=r"labels changed.*update_splits=True \(--update-splits\)"):
        _prep(fixed, banglabert, cache_dir=tmp_path, splits=path, **CB)
    q = _prep(fixed, banglabert, cache_dir=tmp_path, splits=path, update_splits=True, **CB)
    assert np.array_equal(q.fold_ids, p.fold_ids)                             # nothing moved
    assert q.partition.changes["relabelled"] >= 1 and q.partition.changes["new"] == 0
    with pytest.raises(BanglaDataError, match=r"update_splits=True \(--update-splits\).*splits= \(--splits PATH\)"):
        _prep(df, banglabert, cache_dir=tmp_path, update_splits=True, **CB)


@pytest.mark.shared
@pytest.mark.parametrize("stratification_type", ["multiclass", "multilabel"])
def test_update_splits_new_and_removed_rows(tmp_path, stratification_type):
    "5% new texts and some removed rows: no old row moves, label rates within 1 point, no text on both sides."
    df = pd.read_csv(CYBERBULLY_CSV)
    new_pos, gone_pos = _drop_texts(df, 0.05, 0), _drop_texts(df, 0.01, 1)
    o = PrepareOptions(**CB, report_unk=False, stratification_type=stratification_type)
    old = _quiet(load_comments, df.drop(index=new_pos), o)
    made = _quiet(split_rows, old, o.replace(test_size=0.15), None)
    path = save_splits(tmp_path / "s.csv", made.fold_ids, old.row_ids, old.comments, old.labels)
    now = _quiet(load_comments, df.drop(index=np.setdiff1d(gone_pos, new_pos)), o)
    with pytest.raises(BanglaDataError, match=r"stale: the data's texts changed.*update_splits=True"):
        _quiet(split_rows, now, o.replace(splits=path), None)
    up = _quiet(split_rows, now, o.replace(splits=path, update_splits=True), None)
    before = pd.Series(made.fold_ids, index=old.row_ids)
    after = pd.Series(up.fold_ids, index=now.row_ids)
    kept = before.index.intersection(after.index)
    assert (before[kept] == after[kept]).all()                                 # 0 old rows moved
    ch = up.changes                         # counted by content: a new row whose text a removed row had takes its line
    assert ch["kept"] + ch["new"] == len(after) and ch["kept"] + ch["removed"] == len(before) and ch["removed"] > 0
    assert ch["kept"] >= len(kept) and ch["new"] > 0.04 * len(after)
    assert up.report.max_deviation_pp <= 1.0 and up.report.val_in_train == 0, up.report
    assert "updated to this data" in up.source and f"{up.changes['new']:,} new rows placed" in up.source


def test_update_summary_in_the_printed_report(tmp_path):
    "prepare's report lists kept, new and removed rows and the label-rate deviation after the update."
    df = pd.read_csv(SAMPLE_PATH)
    p = _prep(df.iloc[:380], sample_tokenizer(), cache_dir=tmp_path, test_size=0.1)
    path = p.save_splits(tmp_path / "s.csv")
    q = _prep(df.iloc[5:], sample_tokenizer(), cache_dir=tmp_path, splits=path, update_splits=True)
    text = q.summary()
    assert "updated to this data: 375 rows kept their place" in text and "5 removed rows dropped" in text, text
    assert "label rates within" in text
    assert q.to_dict()["config"]["split_source"].startswith(f", {len(q.test_indices):,} test rows from")


def test_cli_update_splits(tmp_path):
    df = pd.read_csv(SAMPLE_PATH)
    df.iloc[:380].to_csv(tmp_path / "old.csv", index=False)
    env = dict(os.environ, BANGLA_DATA_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1")
    run = lambda *a: subprocess.run(CLI + list(a) + ["--fallback-to-sample-tokenizer", "--no-report-unk"],
                                    capture_output=True, text=True, env=env, cwd=ROOT)
    first = run("prepare", str(tmp_path / "old.csv"), "--test-size", "0.1", "--save-splits", str(tmp_path / "s.csv"))
    assert first.returncode == 0, first.stderr
    stale = run("prepare", str(SAMPLE_PATH), "--splits", str(tmp_path / "s.csv"))
    assert stale.returncode == 2 and "--update-splits" in stale.stderr, stale.stderr
    up = run("prepare", str(SAMPLE_PATH), "--splits", str(tmp_path / "s.csv"), "--update-splits", "--json")
    assert up.returncode == 0, up.stderr
    assert "380 rows kept their place" in json.loads(up.stdout)["config"]["split_source"]
    no_file = run("prepare", "--update-splits")
    assert no_file.returncode == 2 and "--splits PATH" in no_file.stderr and "Traceback" not in no_file.stderr


def test_format_1_files_get_a_clear_message(tmp_path):
    c, y = _quiet(load_and_preprocess_data, SAMPLE_PATH, verbose=False)
    path = save_splits(tmp_path / "s.csv", np.arange(len(c)) % 3, np.arange(len(c)) + 2, c, y)
    meta = json.loads(sidecar_path(path).read_text()); meta["format"] = 1
    sidecar_path(path).write_text(json.dumps(meta))
    with pytest.raises(BanglaDataError, match="format 1, which found rows by their position.*make the splits again"):
        _quiet(make_splits, c, y, splits_path=path)
