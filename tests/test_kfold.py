"""Integration tests of `bangla_data.kfold` on the real datasets in ../shared (issue 5)."""
import hashlib
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.model_selection import cross_validate

from bangla_data.env import BanglaDataError
from bangla_data.kfold import LeakFreeKFold, assign_folds, fold_report, prepare_kfold_splits
from bangla_data.duplicates import duplicate_report, label_conflicts
from bangla_data.loading import load_and_preprocess_data
from conftest import CYBERBULLY_CSV, CYBERBULLY_LABELS, TOXIC_CSV, TOXIC_LABELS, load_real as _load

pytestmark = pytest.mark.shared   # every test here reads the real datasets in ../shared


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return fn(*args, **kw)


def _check_partition(splits, n, k):
    assert len(splits) == k
    vals = np.concatenate([v for _, v in splits])
    assert np.array_equal(np.sort(vals), np.arange(n)), "every row must be in exactly one validation fold"
    for tr, va in splits:
        assert tr.dtype == np.int64 and va.dtype == np.int64
        assert len(tr) + len(va) == n and not np.intersect1d(tr, va).size
        assert np.all(np.diff(tr) > 0) and np.all(np.diff(va) > 0)


def test_design_style_folds_leak(cyberbully):
    "The problem the issue measured: plain stratification puts many validation texts in the training fold."
    comments, labels = cyberbully
    rep = fold_report(_quiet(prepare_kfold_splits, comments, labels, 5, group_duplicates=False),
                      labels, CYBERBULLY_LABELS, comments)
    assert rep.max_deviation_pp < 0.5
    assert rep.val_in_train / len(comments) > 0.15, rep


@pytest.mark.parametrize("stratification_type", ["multiclass", "multilabel"])
@pytest.mark.parametrize("name", ["cyberbully", "toxic"])
def test_leak_free_and_balanced(name, stratification_type, request):
    "Issue 5 target: no validation text in its training fold; every label within 1 point of its overall rate."
    comments, labels = request.getfixturevalue(name)
    names = CYBERBULLY_LABELS if name == 'cyberbully' else TOXIC_LABELS
    splits = _quiet(prepare_kfold_splits, comments, labels, 5, stratification_type)
    _check_partition(splits, len(comments), 5)
    rep = fold_report(splits, labels, names, comments)
    assert rep.val_in_train == 0, rep
    assert rep.max_deviation_pp <= 1.0, rep
    sizes = rep.table.val_rows
    assert sizes.max() - sizes.min() <= 0.01 * len(comments), rep
    # independently of fold_report: no text on both sides of any split
    c = np.asarray(comments, dtype=object)
    for tr, va in splits: assert not np.isin(c[va], c[tr]).any()


def test_plain_splits_balanced(cyberbully):
    comments, labels = cyberbully
    for st in ("multiclass", "multilabel"):
        splits = _quiet(prepare_kfold_splits, comments, labels, 5, st, group_duplicates=False)
        _check_partition(splits, len(comments), 5)
        assert fold_report(splits, labels, CYBERBULLY_LABELS).max_deviation_pp < 0.5


def _fold_hash(fold):
    return hashlib.sha256(np.ascontiguousarray(fold, dtype=np.int64).tobytes()).hexdigest()


@pytest.mark.parametrize("stratification_type,group_duplicates",
                         [("multiclass", True), ("multilabel", True), ("multiclass", False), ("multilabel", False)])
def test_reproducible_across_processes(cyberbully, stratification_type, group_duplicates):
    "Same seed, same folds in a fresh interpreter with another hash seed; another seed gives other folds."
    comments, labels = cyberbully
    here = _quiet(assign_folds, comments, labels, 5, stratification_type, 42, group_duplicates)
    assert not np.array_equal(here, _quiet(assign_folds, comments, labels, 5, stratification_type, 43, group_duplicates))
    code = (
        "import warnings, hashlib, numpy as np; warnings.simplefilter('ignore')\n"
        "from bangla_data.loading import load_and_preprocess_data\nfrom bangla_data.kfold import assign_folds\n"
        f"c, y = load_and_preprocess_data({str(CYBERBULLY_CSV)!r}, text_column='comment', label_columns={CYBERBULLY_LABELS!r}, verbose=False)\n"
        "np.random.seed(999); np.random.rand(7)\n"
        f"f = assign_folds(c, y, 5, {stratification_type!r}, 42, {group_duplicates!r})\n"
        "print(hashlib.sha256(np.ascontiguousarray(f, dtype=np.int64).tobytes()).hexdigest())\n")
    env = dict(os.environ, PYTHONHASHSEED='12345')
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert out == _fold_hash(here)


def test_iterstrat_leaves_global_rng_alone(cyberbully):
    comments, labels = cyberbully
    np.random.seed(5)
    expected = np.random.rand(3)
    np.random.seed(5)
    _quiet(assign_folds, comments, labels, 5, 'multilabel', 42, False)
    assert np.array_equal(np.random.rand(3), expected)


def test_conflicting_duplicates_reported(cyberbully):
    comments, labels = cyberbully
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        prepare_kfold_splits(comments, labels, 5)
    msgs = [str(x.message) for x in w if 'share their text with rows that have other labels' in str(x.message)]
    assert len(msgs) == 1
    conflicts = label_conflicts(comments, labels, CYBERBULLY_LABELS)
    assert msgs[0].startswith(f"{len(conflicts):,} rows")
    assert conflicts.group.nunique() == duplicate_report(comments, labels).conflicting_groups
    for _, g in conflicts.groupby('group'):
        assert g.text.nunique() == 1 and len(g) >= 2
        assert len(g[CYBERBULLY_LABELS].drop_duplicates()) >= 2
    # no conflict warning once duplicates are not grouped
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        prepare_kfold_splits(comments, labels, 5, group_duplicates=False)
    assert not any('other labels' in str(x.message) for x in w)


def test_user_groups_and_duplicates(cyberbully):
    "Authors that never share a text (each text's rows belong to one author, ~5 rows per author) stay apart."
    comments, labels = cyberbully
    text_id = np.unique(np.asarray(comments, dtype=object), return_inverse=True)[1]
    authors = (text_id * 7919) % 2500
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        splits = prepare_kfold_splits(comments, labels, 5, groups=authors)
    assert not any('must stay together' in str(x.message) for x in w)
    _check_partition(splits, len(comments), 5)
    rep = fold_report(splits, labels, CYBERBULLY_LABELS, comments)
    assert rep.val_in_train == 0 and rep.max_deviation_pp <= 1.0, rep
    for tr, va in splits: assert not np.intersect1d(authors[tr], authors[va]).size


def test_errors_on_real_data(cyberbully):
    comments, labels = cyberbully
    with pytest.raises(BanglaDataError, match="at least 2"): prepare_kfold_splits(comments, labels, 1)
    with pytest.raises(BanglaDataError, match="only 12,546 rows"): prepare_kfold_splits(comments, labels, 12_547, group_duplicates=False)
    n_texts = len(set(comments))
    with pytest.raises(BanglaDataError, match=f"only {n_texts:,} distinct texts"):
        prepare_kfold_splits(comments, labels, n_texts + 1)


def test_sklearn_splitter(cyberbully):
    comments, labels = cyberbully
    bully = labels[:, 0]
    cv = LeakFreeKFold(5)
    res = _quiet(cross_validate, DummyClassifier(), comments, bully, cv=cv, return_indices=True)
    c = np.asarray(comments, dtype=object)
    for tr, va in zip(res['indices']['train'], res['indices']['test']):
        assert not np.isin(c[va], c[tr]).any()
    assert len(res['test_score']) == 5


def test_chained_groups_warn(cyberbully):
    "Consecutive-row authors chained by popular texts form one huge group: the split warns instead of pretending."
    comments, labels = cyberbully
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        prepare_kfold_splits(comments, labels, 5, groups=np.arange(len(comments)) // 7)
    assert any('must stay together in one fold (identical texts link groups together' in str(x.message) for x in w)
