"""Issue 24 (multiclass): the building blocks on the real data — class ids and counts, class-stratified leak-free
folds, cross-entropy class weights and the multiclass metrics, each against pandas or scikit-learn."""
import warnings
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import CYBERBULLY_CSV, CYBERBULLY_LABELS, TOXIC_CSV, TOXIC_LABELS, load_real
from bangla_data.env import BanglaDataError
from bangla_data.labels import class_ids, class_report, label_matrix, multihot_to_categorical
from bangla_data.duplicates import resolve_conflicts, text_ids
from bangla_data.kfold import assign_folds, assign_test_split, fold_report, splits_from_folds
from bangla_data.weights import MULTICLASS_WEIGHT_METHODS, multiclass_class_weights
from bangla_data.metrics import confusion_table, multiclass_metrics, multiclass_report, softmax

DATASETS = {'toxic': (TOXIC_CSV, 'text', TOXIC_LABELS), 'cyberbully': (CYBERBULLY_CSV, 'comment', CYBERBULLY_LABELS)}


@pytest.fixture(scope='module', params=list(DATASETS))
def categorical(request, tmp_path_factory):
    """A real file with a categorical column `label` (first positive label, or 'none'), its cleaned texts and the
    column as read back from the written file."""
    path, text, labels = DATASETS[request.param]
    comments, y = load_real(path, text, labels)
    cat = multihot_to_categorical(y, labels)
    out = tmp_path_factory.mktemp(request.param) / 'categorical.csv'
    pd.DataFrame({'text': comments, 'label': cat}).to_csv(out, index=False)
    column = pd.read_csv(out, dtype=str, keep_default_na=False)['label']
    return comments, column


@pytest.mark.shared
def test_class_ids_and_counts_equal_the_file(categorical):
    _, column = categorical
    ids, classes = class_ids(column)
    counts = column.value_counts()
    assert classes == sorted(counts.index)
    assert ids.dtype == np.int64 and ids.shape == (len(column),)
    np.testing.assert_array_equal(np.asarray(classes, dtype=object)[ids], column.to_numpy(dtype=object))
    rep = class_report(ids, classes)
    assert rep.table['count'].to_dict() == counts.to_dict() and rep.n_rows == len(column)
    # a stated order fixes the ids; a value outside it is an error naming its rows and the option
    given = classes[::-1]
    ids2, _ = class_ids(column, classes=given)
    np.testing.assert_array_equal(np.asarray(given, dtype=object)[ids2], column.to_numpy(dtype=object))
    with pytest.raises(BanglaDataError, match=r"not among classes=.*--classes"):
        class_ids(column, classes=classes[1:], rows=np.arange(len(column)) + 2)


@pytest.mark.shared
def test_a_categorical_column_as_a_label_column_names_task_multiclass(categorical):
    _, column = categorical
    with pytest.raises(BanglaDataError, match=r"must hold 0 or 1.*task='multiclass'.*--task multiclass --labels label"):
        label_matrix(pd.DataFrame({'label': column}))


@pytest.mark.shared
def test_folds_stratified_by_class_and_leak_free(categorical):
    comments, column = categorical
    ids, classes = class_ids(column)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')           # identical texts with other classes: kept together, warned about
        fold = assign_folds(comments, ids, 5, label_columns=classes)
        test = assign_test_split(comments, ids, 0.1, label_columns=classes)
    rep = fold_report(splits_from_folds(fold, 5), ids, classes, comments)
    assert list(rep.overall.index) == classes
    assert rep.max_deviation_pp < 1.0, rep       # every class's rate in every fold within 1 point of overall
    assert rep.val_in_train == 0
    tid = text_ids(comments)
    for f in range(5): assert not np.intersect1d(tid[fold == f], tid[fold != f]).size
    overall = np.bincount(ids, minlength=len(classes)) / len(ids)
    held = np.bincount(ids[test], minlength=len(classes)) / test.sum()
    assert np.abs(held - overall).max() * 100 < 1.0
    assert not np.intersect1d(tid[test], tid[~test]).size


@pytest.mark.shared
def test_weights_equal_sklearn_balanced_on_each_training_fold(categorical):
    from sklearn.utils.class_weight import compute_class_weight
    comments, column = categorical
    ids, classes = class_ids(column)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        fold = assign_folds(comments, ids, 5, label_columns=classes)
    for f in range(5):
        tr = ids[fold != f]
        w = multiclass_class_weights(tr, len(classes))
        assert w.dtype == torch.float32 and w.shape == (len(classes),)
        np.testing.assert_allclose(w.numpy(), compute_class_weight('balanced', classes=np.arange(len(classes)), y=tr),
                                   rtol=1e-6)
    for m in MULTICLASS_WEIGHT_METHODS:
        w = multiclass_class_weights(ids, len(classes), m, max_weight=20.0).numpy()
        assert (w > 0).all() and np.isfinite(w).all() and w.max() <= 20.0
        assert w[np.argmin(np.bincount(ids))] == w.max()        # the rarest class weighs most


@pytest.mark.shared
def test_metrics_equal_sklearn(categorical):
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
    _, column = categorical
    y, classes = class_ids(column)
    C = len(classes)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(len(y), C)) + 2.0 * np.eye(C)[y] * (rng.random(len(y)) < 0.6)[:, None]
    probs = softmax(logits)
    pred = probs.argmax(1)
    m = multiclass_metrics(y, probs, classes)
    lab = np.arange(C)
    assert m['accuracy'] == pytest.approx(accuracy_score(y, pred))
    for avg in ('macro', 'weighted'):
        assert m[f'f1_{avg}'] == pytest.approx(f1_score(y, pred, average=avg, zero_division=0))   # sklearn's default
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=lab, zero_division=0)
    for k, ref in (('precision', p), ('recall', r), ('f1', f)):
        np.testing.assert_allclose([m[f'{k}_{c}'] for c in classes], ref, rtol=1e-12)
    assert multiclass_report(y, probs, classes)['support'].iloc[:C].tolist() == s.tolist()
    ct = confusion_table(y, probs, classes)
    assert list(ct.index) == classes and list(ct.columns) == classes
    np.testing.assert_array_equal(ct.to_numpy(), confusion_matrix(y, pred, labels=lab))
    # and the Trainer's loss with the weights is PyTorch's weighted cross-entropy
    w = multiclass_class_weights(y, C)
    t, z = torch.tensor(y), torch.tensor(logits, dtype=torch.float32)
    ref = (w[t] * -torch.log_softmax(z, 1)[torch.arange(len(t)), t]).sum() / w[t].sum()
    assert torch.nn.functional.cross_entropy(z, t, weight=w).item() == pytest.approx(ref.item(), rel=1e-5)


@pytest.mark.shared
def test_majority_conflicts_with_classes(categorical):
    comments, column = categorical
    ids, _ = class_ids(column)
    res = resolve_conflicts(comments, ids, 'majority')
    tid = text_ids(comments)
    G = tid.max() + 1
    C = ids.max() + 1
    votes = np.bincount(tid * C + ids, minlength=G * C).reshape(G, C)
    np.testing.assert_array_equal(res.labels, votes.argmax(1)[tid])   # every copy: the most frequent class
    changed = votes.max(1) < np.bincount(tid, minlength=G)            # texts whose copies disagreed
    assert res.texts == int(changed.sum())
    assert res.ties == int(((votes == votes.max(1, keepdims=True)).sum(1) > 1).sum())
