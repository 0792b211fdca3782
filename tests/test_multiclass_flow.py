"""Issue 24 (multiclass), distillation and results: the softmax KD loss equals Hinton et al.'s loss computed row by row
(class weights, row weights, masking, gradients); the teacher store keeps C logits per row unchanged; the out-of-fold
table of a 5-fold run gives scikit-learn's confusion matrix and report, and survives save_predictions."""
import warnings
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from conftest import CYBERBULLY_CSV, CYBERBULLY_LABELS, load_real
from bangla_data.env import BanglaDataError
from bangla_data.distillation import TeacherOutputStore, distillation_loss, softmax_distillation_loss
from bangla_data.kd_losses import KD_METHODS, kd_objective
from bangla_data.metrics import confusion_table, softmax
from bangla_data.results import OutOfFold, class_probs, predictions_table, read_predictions, save_predictions


def direct_loss(s, t, y, T, alpha, cw=None, rw=None):
    "Hinton et al.'s loss in float64, one row at a time: CE weighted by r·w_y (torch's weighted mean), KL mean by r."
    s, t = s.double(), t.double()
    cw = torch.ones(s.shape[1], dtype=torch.float64) if cw is None else cw.double()
    rw = torch.ones(len(y), dtype=torch.float64) if rw is None else rw.double()
    ce = kl = ce_w = kl_w = 0.
    for i in range(len(y)):
        pt, ps = torch.softmax(t[i] / T, 0), torch.softmax(s[i] / T, 0)
        ce = ce - rw[i] * cw[y[i]] * torch.log_softmax(s[i], 0)[y[i]]
        ce_w = ce_w + rw[i] * cw[y[i]]
        kl = kl + rw[i] * (pt * torch.log(pt / ps)).sum()
        kl_w = kl_w + rw[i]
    return alpha * ce / ce_w + (1 - alpha) * T ** 2 * kl / kl_w


CASES = [(1.0, 0.5, False, False), (2.0, 0.5, True, False), (4.0, 0.1, True, True), (0.5, 0.9, False, True),
         (3.0, 0.0, True, True), (2.0, 1.0, True, True)]


@pytest.mark.parametrize('T,alpha,with_cw,with_rw', CASES)
def test_kd_loss_equals_the_direct_loop(T, alpha, with_cw, with_rw):
    g = torch.Generator().manual_seed(int(10 * T + 100 * alpha))
    B, C = 32, 5
    s = (3 * torch.randn(B, C, generator=g)).requires_grad_()
    t = 3 * torch.randn(B, C, generator=g)
    y = torch.randint(C, (B,), generator=g)
    cw = torch.rand(C, generator=g) * 4 + 0.1 if with_cw else None
    rw = torch.rand(B, generator=g) if with_rw else None
    got = softmax_distillation_loss(s, t, y, T, alpha, cw, rw)
    s64 = s.detach().double().requires_grad_()
    want = direct_loss(s64, t, y, T, alpha, cw, rw)
    assert abs(got.item() - want.item()) < 1e-5 * max(1.0, abs(want.item()))
    # the same through distillation_loss(task='multiclass'), the class weights in pos_weight's place
    assert distillation_loss(s, t, y, T, alpha, cw, rw, task='multiclass').item() == got.item()
    got.backward(); want.backward()
    assert torch.allclose(s.grad.double(), s64.grad, atol=1e-6), (s.grad.double() - s64.grad).abs().max()


def test_class_weights_are_torchs_weighted_mean():
    g = torch.Generator().manual_seed(0)
    s, t, y = torch.randn(50, 4, generator=g), torch.randn(50, 4, generator=g), torch.randint(4, (50,), generator=g)
    cw = torch.tensor([0.5, 1.0, 2.0, 8.0])
    ce = softmax_distillation_loss(s, t, y, alpha=1.0, class_weights=cw)
    assert torch.allclose(ce, F.cross_entropy(s, y, weight=cw))
    assert not torch.allclose(ce, F.cross_entropy(s, y, weight=cw, reduction='none').mean())
    # over a whole set with scikit-learn's 'balanced' weights the two reductions agree (sum of w_y = N)
    from bangla_data.weights import multiclass_class_weights
    wb = multiclass_class_weights(y, 4)
    assert torch.allclose(softmax_distillation_loss(s, t, y, alpha=1.0, class_weights=wb),
                          F.cross_entropy(s, y, weight=wb, reduction='none').mean(), atol=1e-6)


def test_masked_rows_count_for_nothing():
    "A row of weight 0 (a masked or padding row) changes neither the loss nor its gradient."
    g = torch.Generator().manual_seed(3)
    s, t = torch.randn(10, 3, generator=g, requires_grad=True), torch.randn(10, 3, generator=g)
    y, cw = torch.randint(3, (10,), generator=g), torch.tensor([1.0, 2.0, 3.0])
    keep = torch.tensor([1, 1, 0, 1, 0, 1, 1, 1, 0, 1], dtype=torch.float32)
    full = softmax_distillation_loss(s, t, y, 2.0, 0.4, cw, keep)
    part = softmax_distillation_loss(s[keep > 0], t[keep > 0], y[keep > 0], 2.0, 0.4, cw)
    assert torch.allclose(full, part, atol=1e-6)
    full.backward()
    assert s.grad[keep == 0].abs().max() == 0


def test_multiclass_labels_are_checked():
    s = torch.zeros(4, 3)
    with pytest.raises(BanglaDataError, match=r"got \[3\]"):
        softmax_distillation_loss(s, s, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(BanglaDataError, match="are multi-label labels"):
        softmax_distillation_loss(s, s, torch.zeros(4, 3))
    with pytest.raises(BanglaDataError, match="pass task='multiclass'"):
        distillation_loss(s, s, torch.tensor([0, 1, 2, 0]))
    with pytest.raises(BanglaDataError, match="task must be"):
        distillation_loss(s, s, torch.zeros(4, 3), task='softmax')


def test_the_teacher_store_keeps_c_class_logits(tmp_path):
    "C logits per row go in and come out unchanged, and the loss from stored logits equals the loss from the teacher's."
    rng = np.random.default_rng(1)
    N, C = 60, 4
    logits = rng.normal(size=(N, C)).astype(np.float32)
    rows = rng.permutation(np.arange(100, 100 + N))
    store = TeacherOutputStore(tmp_path)
    store.save('teacher-mc', 'b' * 32, 2, rows, logits)
    out = store.load('teacher-mc', 'b' * 32, 2, rows=rows, num_labels=C)
    assert out.num_labels == C and [e['num_labels'] for e in store.entries()] == [C]
    batch = {'index': torch.tensor(rows[[5, 0, 17]])}
    assert torch.equal(out.for_batch(batch), torch.from_numpy(logits[[5, 0, 17]]))
    s, y = torch.randn(3, C), torch.tensor([0, 3, 1])
    assert softmax_distillation_loss(s, out.for_batch(batch), y).item() == \
        softmax_distillation_loss(s, torch.from_numpy(logits[[5, 0, 17]]), y).item()
    with pytest.raises(BanglaDataError, match="predicts 3 labels"):
        store.load('teacher-mc', 'b' * 32, 2, num_labels=3)


@pytest.mark.parametrize('method', list(KD_METHODS))
def test_every_method_uses_the_softmax_logit_term(method):
    "Each method's logit term is the softmax KD (alpha=1 for 'hidden' and 'attention'); the others are untouched."
    g = torch.Generator().manual_seed(2)
    B, C, Ts, Tt = 4, 3, 5, 6
    s_out = {'logits': torch.randn(B, C, generator=g), 'hidden_states': [torch.randn(B, Ts, 8, generator=g)] * 3,
             'attentions': [torch.softmax(torch.randn(B, 2, Ts, Ts, generator=g), -1)] * 2}
    t_out = {'logits': torch.randn(B, C, generator=g), 'hidden_states': [torch.randn(B, Tt, 8, generator=g)] * 3,
             'attentions': [torch.softmax(torch.randn(B, 2, Tt, Tt, generator=g), -1)] * 2}
    align = torch.softmax(torch.randn(B, Ts, Tt, generator=g), -1)
    batch = {'labels': torch.tensor([0, 2, 1, 2]), 'align': align, 'align_mask': torch.ones(B, Ts, dtype=torch.bool)}
    cw = torch.tensor([1.0, 0.5, 2.0])
    mc = kd_objective(method, 8, 8, 2, 2, task='multiclass', temperature=3.0)(s_out, t_out, batch, cw)
    alpha = KD_METHODS[method].get('alpha', 0.5)
    want = direct_loss(s_out['logits'], t_out['logits'], batch['labels'], 3.0, alpha, cw)
    assert abs(mc['logit'].item() - want.item()) < 1e-5
    ml = kd_objective(method, 8, 8, 2, 2, temperature=3.0)(s_out, t_out, {**batch, 'labels': F.one_hot(
        batch['labels'], C).float()}, None)
    for term in set(mc) - {'logit', 'loss'}: assert torch.equal(mc[term], ml[term])


CLASSES = ['none', 'bully', 'sexual', '=HYPERLINK("x")', '1']   # a formula and a number as class names, on purpose


def fake_run(comments, y, classes, folds, seed=0):
    "A 5-fold run with a fake model: softmax of noise plus a push towards the true class; the OOF table."
    C, rng = len(classes), np.random.default_rng(seed)
    onehot = np.eye(C, dtype=np.uint8)[y]                       # as the cache keeps multiclass labels
    rows = np.arange(len(y)) + 2
    make = lambda i, p, f: predictions_table(i, p, comments, onehot, ['label'], rows, fold=f, task='multiclass',
                                             classes=classes)
    oof = OutOfFold(make, np.flatnonzero(folds >= 0), len(y), folds, task='multiclass')
    for k in range(5):
        va = np.flatnonzero(folds == k)
        for chunk in np.array_split(rng.permutation(va), 7):    # batches, in any order
            logits = rng.normal(size=(len(chunk), C)) + 1.5 * np.eye(C)[y[chunk]] * (rng.random(len(chunk)) < .7)[:, None]
            oof.add(chunk, torch.softmax(torch.tensor(logits, dtype=torch.float32), -1), fold=k)
    return oof


def check_oof_against_sklearn(oof, y, classes, tmp_path):
    from sklearn.metrics import classification_report, confusion_matrix, f1_score
    table = oof.finalize()
    C, idx = len(classes), table['index'].to_numpy()
    P = table[[f'prob_{c}' for c in classes]].to_numpy()
    pred = P.argmax(1)
    assert table['label'].tolist() == [classes[i] for i in y[idx]]
    assert table['predicted'].tolist() == [classes[i] for i in pred]
    assert np.allclose(P.sum(1), 1, atol=1e-6)
    cm = oof.confusion()
    assert list(cm.index) == classes and list(cm.columns) == classes
    np.testing.assert_array_equal(cm.to_numpy(), confusion_matrix(y[idx], pred, labels=np.arange(C)))
    ref = classification_report(y[idx], pred, labels=np.arange(C), target_names=classes, output_dict=True,
                                zero_division=0)
    rep = oof.report()
    for c in classes:
        np.testing.assert_allclose(rep.loc[c, ['precision', 'recall', 'f1']].to_numpy(float),
                                   [ref[c][k] for k in ('precision', 'recall', 'f1-score')], rtol=1e-12)
    assert rep.loc['accuracy', 'f1'] == pytest.approx(ref['accuracy'])
    for a in ('macro', 'weighted'):           # scikit-learn's default: the classes in the labels or the predictions
        assert rep.loc[f'{a} avg', 'f1'] == pytest.approx(f1_score(y[idx], pred, average=a, zero_division=0))
    # round trip: the CSV read back is the table, and gives the same confusion matrix
    path = oof.save(tmp_path / 'oof.csv')
    back = read_predictions(path, task='multiclass')
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert back['label'].map(type).eq(str).all()              # '1' stays the class name '1'
    pd.testing.assert_frame_equal(confusion_table(*class_probs(back)), cm)
    import csv, io
    cells = [x for r in csv.reader(io.StringIO(path.read_bytes().decode(), newline='')) for x in r]
    assert not [x for x in cells if x[:1] in ('=', '+', '-', '@')]         # no cell a spreadsheet would run
    assert "'=HYPERLINK(\"x\")" in cells or '=HYPERLINK("x")' not in classes
    save_predictions(tmp_path / 'again.csv', back)
    assert (tmp_path / 'again.csv').read_bytes() == path.read_bytes()
    return table


def test_oof_table_of_a_5_fold_run_equals_sklearn(tmp_path):
    rng = np.random.default_rng(5)
    N = 400
    y = rng.choice(len(CLASSES), size=N, p=[.5, .2, .15, .1, .05])
    comments = [f'মন্তব্য {i}' for i in range(N)]
    folds = rng.permutation(np.arange(N) % 6) - 1                # 5 folds, and about a sixth held out (-1)
    table = check_oof_against_sklearn(fake_run(comments, y, CLASSES, folds), y, CLASSES, tmp_path)
    assert len(table) == (folds >= 0).sum() and set(table['fold']) == set(range(5))


@pytest.mark.shared
def test_oof_on_the_real_data_equals_sklearn(tmp_path):
    "The cyberbully data as one class per comment (its first label, or 'none'), class-stratified leak-free folds."
    from bangla_data.labels import class_ids, multihot_to_categorical
    from bangla_data.kfold import assign_folds
    comments, labels = load_real(CYBERBULLY_CSV, 'comment', CYBERBULLY_LABELS)
    y, classes = class_ids(multihot_to_categorical(labels, CYBERBULLY_LABELS))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        folds = assign_folds(comments, y, 5, label_columns=classes)
    check_oof_against_sklearn(fake_run(comments, y, classes, folds), y, classes, tmp_path)


def test_a_multiclass_oof_refuses_what_a_multilabel_one_does():
    y, comments = np.array([0, 1, 2, 0]), list('abcd')
    make = lambda i, p, f: predictions_table(i, p, comments, y, ['label'], np.arange(4), fold=f, task='multiclass',
                                             classes=['a', 'b', 'c'])
    oof = OutOfFold(make, [0, 1, 2, 3], 4, [0, 0, 1, 1], task='multiclass')
    oof.add([0, 1], softmax(np.zeros((2, 3))), fold=0)
    with pytest.raises(BanglaDataError, match="already predicted"): oof.add([1], softmax(np.zeros((1, 3))), fold=0)
    with pytest.raises(BanglaDataError, match="torch.softmax"): oof.add([2], [[.9, .9, .9]], fold=1)
    with pytest.raises(BanglaDataError, match="have no prediction"): oof.confusion()
    with pytest.raises(BanglaDataError, match="task must be"): OutOfFold(make, [0], 4, task='multi')
