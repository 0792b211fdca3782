"""Integration tests of `bangla_data.weights` on the real datasets in ../shared (issue 5)."""
import warnings

import numpy as np
import pytest
import torch

from bangla_data.kfold import prepare_kfold_splits
from bangla_data.loading import load_and_preprocess_data
from bangla_data.weights import WEIGHT_METHODS, calculate_class_weights
from conftest import CYBERBULLY_CSV, CYBERBULLY_LABELS, TOXIC_CSV, TOXIC_LABELS

pytestmark = pytest.mark.shared   # every test here reads the real datasets in ../shared
DATASETS = {'cyberbully': (CYBERBULLY_CSV, 'comment', CYBERBULLY_LABELS), 'toxic': (TOXIC_CSV, 'text', TOXIC_LABELS)}


@pytest.fixture(scope="module", params=list(DATASETS))
def data(request):
    path, text, names = DATASETS[request.param]
    comments, labels = load_and_preprocess_data(path, text_column=text, label_columns=names, verbose=False)
    return comments, labels, names


def _by_hand(labels):
    "The design's formula, one label at a time, in plain Python."
    out = []
    for j in range(labels.shape[1]):
        pos = sum(1 for v in labels[:, j] if v == 1)
        out.append((len(labels) - pos) / pos if pos else 1.0)
    return torch.tensor(out, dtype=torch.float32)


def test_ratio_matches_hand_formula(data):
    comments, labels, names = data
    with warnings.catch_warnings():
        warnings.simplefilter('error')          # every real label has positives and negatives: no warning
        w = calculate_class_weights(labels, label_columns=names)
    assert w.dtype == torch.float32 and w.shape == (len(names),)
    assert torch.allclose(w, _by_hand(labels), rtol=1e-6)
    if names == CYBERBULLY_LABELS:
        # the 2,828 unlabeled rows are negatives of every label
        assert int((labels.sum(1) == 0).sum()) == 2_828
        pos = labels.sum(0)
        assert torch.allclose(w, torch.tensor((len(labels) - pos) / pos), rtol=1e-6)


def test_all_methods_positive_and_ordered(data):
    _, labels, names = data
    ws = {m: calculate_class_weights(labels, m, label_columns=names) for m in WEIGHT_METHODS}
    for m, w in ws.items(): assert torch.isfinite(w).all() and (w > 0).all(), m
    ratio = ws['ratio']
    assert torch.allclose(ws['sqrt'], ratio.sqrt()) and torch.allclose(ws['log'], torch.log1p(ratio))
    rare = ratio > 1                             # labels rarer than 50%: every variant damps the ratio
    for m in ('sqrt', 'log', 'effective'): assert (ws[m][rare] < ratio[rare]).all(), m
    capped = calculate_class_weights(labels, max_weight=3.0, label_columns=names)
    assert torch.equal(capped, torch.clamp(ratio, max=3.0))


def test_training_fold_weights(data):
    "Per fold, the weights are those of the training rows only, and close to (but not the same as) all rows'."
    comments, labels, names = data
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        splits = prepare_kfold_splits(comments, labels, 5, label_columns=names)
    w_all = calculate_class_weights(labels, label_columns=names)
    for tr, va in splits:
        w = calculate_class_weights(labels[tr], label_columns=names)
        assert torch.allclose(w, _by_hand(labels[tr]), rtol=1e-6)
        assert torch.allclose(w, w_all, rtol=0.05)          # stratified folds: within 5%
    assert any(not torch.equal(calculate_class_weights(labels[tr], label_columns=names), w_all) for tr, _ in splits)


def test_degenerate_labels_on_real_rows(data):
    "Rows chosen so one label is never / always positive: weight 1.0 with a warning naming it, never 0."
    _, labels, names = data
    first = names[0]
    for rows, phrase in ((labels[:, 0] == 0, 'have no positive rows'), (labels[:, 0] == 1, 'are positive in every row')):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter('always')
            weights = calculate_class_weights(labels[rows], label_columns=names)
        assert weights[0].item() == 1.0
        assert any(f"{first!r} {phrase}" in str(x.message) for x in w), [str(x.message) for x in w]
        assert (weights > 0).all()
