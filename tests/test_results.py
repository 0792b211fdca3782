"""Issue 14: out-of-fold predictions mapped to rows (each row once), row identity through `df.sample` and
`id_column`, thresholds and the per-label report against scikit-learn, and the conflicts policies."""
import warnings
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.metrics import f1_score, precision_recall_fscore_support

from bangla_data import BanglaDataError, load_and_preprocess_data, prepare
from bangla_data.sample import SAMPLE_PATH
from bangla_data.metrics import best_thresholds, multilabel_report, prob_column, tune_thresholds
from bangla_data.sample import sample_tokenizer


def _prep(data=None, **kw):
    kw.setdefault("verbose", False); kw.setdefault("report_unk", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prepare(data, tokenizer=sample_tokenizer(), **kw)


def _fake_probs(p, index, seed=0):
    "Probabilities a little better than chance: the true labels plus noise."
    rng = np.random.default_rng(seed)
    return np.clip(0.3 * p.labels[index] + 0.7 * rng.random((len(index), len(p.label_columns))), 0, 1)


def test_oof_table_covers_each_non_test_row_once(tmp_path):
    p = _prep(cache_dir=tmp_path, test_size=0.1, keep_raw_texts=True)
    oof = p.out_of_fold()
    for k in range(p.num_folds):
        _, val_dl, _ = p.fold(k, batch_size=16)
        for b in val_dl: oof.add(b["index"], _fake_probs(p, b["index"].numpy(), k), fold=k)
    table = oof.finalize()
    rest = np.setdiff1d(np.arange(len(p.comments)), p.test_indices)
    assert np.array_equal(table["index"].to_numpy(), rest)                      # each non-test row exactly once
    assert not table["fold"].isin(["test"]).any()
    for k, (_, va) in enumerate(p.splits): assert (table.set_index("index").loc[va, "fold"] == k).all()
    raw = pd.read_csv(SAMPLE_PATH)["comment_text"]
    assert (table["text"].to_numpy() == raw.to_numpy()[table["row"].to_numpy() - 2]).all()  # the text as in the file
    assert list(table.columns[:4]) == ["index", "row", "text", "clean_text"]
    thr = tune_thresholds(table)
    rep = multilabel_report(table, thr)
    assert list(rep.index[-3:]) == ["micro avg", "macro avg", "weighted avg"]
    test = p.predictions_table(p.test_indices, _fake_probs(p, p.test_indices))
    assert (test["fold"] == "test").all() and len(test) == len(p.test_indices)


def test_oof_refuses_missing_and_repeated_rows(tmp_path):
    p = _prep(cache_dir=tmp_path, num_folds=3)
    oof = p.out_of_fold()
    va0 = p.splits[0][1]
    oof.add(va0, _fake_probs(p, va0), fold=0)
    with pytest.raises(BanglaDataError, match="already predicted"):
        oof.add(va0[:2], _fake_probs(p, va0[:2]), fold=1)
    with pytest.raises(BanglaDataError, match="have no prediction"):
        oof.finalize()
    va1 = p.splits[1][1]
    with pytest.raises(BanglaDataError, match="trained on them"):           # fold 2's model trained on fold 1's rows
        oof.add(va1, _fake_probs(p, va1), fold=2)
    with pytest.raises(BanglaDataError, match="expected"):
        p.predictions_table(va0, np.zeros((len(va0), 2)))


def test_df_sample_maps_back_to_the_original_index(tmp_path):
    df = pd.read_csv(SAMPLE_PATH)
    df["id"] = [f"c{i:04d}" for i in range(len(df))]
    s = df.sample(300, random_state=0)
    p = _prep(s, cache_dir=tmp_path, id_column="id", keep_raw_texts=True)
    idx = np.array([0, 5, 299])
    assert p.file_rows(idx).tolist() == s.index[idx].tolist()                  # index labels, not positions
    t = p.predictions_table(idx, _fake_probs(p, idx))
    assert t["row"].tolist() == s.index[idx].tolist()
    assert t["id"].tolist() == df.loc[s.index[idx], "id"].tolist()
    assert t["text"].tolist() == df.loc[s.index[idx], "comment_text"].tolist()
    assert t["bully"].tolist() == df.loc[s.index[idx], "bully"].tolist()
    path = p.save_splits(tmp_path / "s.csv")
    head = pd.read_csv(path).head(3)
    assert head["row"].tolist() == s.index[:3].tolist() and head["id"].tolist() == s["id"].iloc[:3].tolist()
    q = _prep(s, cache_dir=tmp_path, id_column="id", splits=path)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(p.splits, q.splits))
    with pytest.raises(BanglaDataError, match="id column 'nope' not found"):
        _prep(s, cache_dir=tmp_path, id_column="nope")


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 80), st.integers(2, 5), st.integers(0, 3))
def test_thresholds_and_report_equal_sklearn(seed, n, L, decimals):
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, L)) < rng.random(L) * 0.7).astype(int)
    P = rng.random((n, L))
    if decimals: P = np.round(P, decimals)                                      # ties
    names = [f"l{j}" for j in range(L)]
    table = pd.DataFrame({**{c: Y[:, j] for j, c in enumerate(names)},
                          **{prob_column(c): P[:, j] for j, c in enumerate(names)}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        thr = tune_thresholds(table)
    for j, c in enumerate(names):
        cands = [f1_score(Y[:, j], P[:, j] >= t, zero_division=0) for t in np.unique(P[:, j])]
        assert thr.loc[c, "f1"] == pytest.approx(max(cands))                    # no candidate does better
        if Y[:, j].any():
            assert thr.loc[c, "f1"] == pytest.approx(f1_score(Y[:, j], P[:, j] >= thr.loc[c, "threshold"]))
    rep = multilabel_report(table, thr)
    pred = (P >= thr["threshold"].to_numpy()).astype(int)
    sk = precision_recall_fscore_support(Y, pred, average=None, zero_division=0)
    for k, col in enumerate(["precision", "recall", "f1", "support"]):
        assert np.allclose(rep[col].iloc[:L].to_numpy(dtype=float), sk[k])
    for avg in ("micro", "macro", "weighted"):
        s = precision_recall_fscore_support(Y, pred, average=avg, zero_division=0)[:3]
        assert np.allclose(rep.loc[f"{avg} avg", ["precision", "recall", "f1"]].to_numpy(dtype=float), s)
    t, f = best_thresholds(Y, P)
    assert np.allclose(t, thr["threshold"]) and np.allclose(f, thr["f1"])


CASE = pd.DataFrame({"comment_text": ["x", "x", "x", "y", "y", "z", "w", "w"],
                     "a": [1, 1, 0, 1, 0, 0, 1, 1],
                     "b": [0, 0, 1, 1, 0, 1, 0, 0]})


@pytest.mark.parametrize("policy, kept_rows, labels, removed, relabelled", [
    ("keep", [2, 3, 4, 5, 6, 7, 8, 9], [[1, 0], [1, 0], [0, 1], [1, 1], [0, 0], [0, 1], [1, 0], [1, 0]], [], []),
    ("drop", [7, 8, 9], [[0, 1], [1, 0], [1, 0]], [2, 3, 4, 5, 6], []),
    ("majority", [2, 3, 4, 5, 6, 7, 8, 9], [[1, 0], [1, 0], [1, 0], [1, 1], [1, 1], [0, 1], [1, 0], [1, 0]], [],
     [4, 6]),
    ("union", [2, 3, 4, 5, 6, 7, 8, 9], [[1, 1], [1, 1], [1, 1], [1, 1], [1, 1], [0, 1], [1, 0], [1, 0]], [],
     [2, 3, 4, 6]),
])
def test_conflicts_policies_on_a_hand_checked_case(tmp_path, policy, kept_rows, labels, removed, relabelled):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        texts, y, info = load_and_preprocess_data(CASE, label_columns=["a", "b"], clean_text=False, verbose=False,
                                                  return_info=True, conflicts=policy)
    assert info.row_numbers.tolist() == kept_rows and y.astype(int).tolist() == labels
    dropped = [r for rows in info.dropped.values() for r in rows]
    assert sorted(dropped) == removed and info.relabelled == relabelled
    assert info.duplicates.conflicting_groups == 2                              # what the file holds, before the policy
    s = info.summary()
    if policy != "keep": assert f"conflicts={policy!r}" in s
    d = info.to_dict()
    assert d["conflicts"] == policy and d["relabelled"] == relabelled
    p = _prep(CASE, cache_dir=tmp_path, label_columns=["a", "b"], clean_text=False, conflicts=policy, num_folds=2)
    assert p.labels.astype(int).tolist() == labels and p.config["conflicts"] == policy


def test_unknown_conflicts_policy():
    with pytest.raises(BanglaDataError, match="conflicts must be one of"):
        load_and_preprocess_data(CASE, label_columns=["a", "b"], verbose=False, conflicts="vote")
