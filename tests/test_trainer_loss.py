"""Issue 21, items 1-3, on the real data: `BanglaTrainer`'s eval loss is the exact per-row mean of the training loss
(any eval batch size, row order, row weights, and 2 ranks under torchrun), its default metrics are scikit-learn's F1,
`predict` output goes straight into the out-of-fold collector, and `trainer('all')` trains on exactly the non-test
rows."""
import json, os, subprocess, sys, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip('accelerate')
from sklearn.metrics import f1_score  # noqa: E402
from conftest import CYBERBULLY_CSV, CYBERBULLY_LABELS, TORCHRUN_2  # noqa: E402
from bangla_data.dataset import IndexedDataset  # noqa: E402
from bangla_data.metrics import sigmoid  # noqa: E402

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(HERE.parent), 'HF_HUB_OFFLINE': '1'}
REL = 1e-6                                                         # the acceptance bar: relative error


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp('cache')


@pytest.fixture(scope='module')
def real(banglabert, cache):
    "The cyberbullying comments, 5 folds and a 10% test split, tokenized with BanglaBERT (64 tokens)."
    from bangla_data.pipeline import prepare
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return prepare(CYBERBULLY_CSV, tokenizer=banglabert, text_column='comment', label_columns=CYBERBULLY_LABELS,
                       cache_dir=cache, num_folds=5, test_size=0.1, max_length=64, verbose=False)


def _model(p, seed=0):
    from transformers import ElectraConfig, ElectraForSequenceClassification
    torch.manual_seed(seed)
    return ElectraForSequenceClassification(ElectraConfig(
        vocab_size=len(p.tokenizer), embedding_size=16, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, num_labels=len(p.label_columns)))


def _args(tmp_path, **kw):
    from transformers import TrainingArguments
    kw = {**dict(max_steps=20, per_device_train_batch_size=64, per_device_eval_batch_size=128, learning_rate=1e-3,
                 report_to=[], use_cpu=True, save_strategy='no', disable_tqdm=True, seed=3), **kw}
    return TrainingArguments(output_dir=str(tmp_path / 'run'), **kw)


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return fn(*a, **kw)


def _row_losses(logits, labels, pos_weight):
    "Each row's training loss from the logits, in float64: BCE with `pos_weight`, mean over the labels."
    z, y = torch.as_tensor(np.asarray(logits), dtype=torch.float64), torch.as_tensor(np.asarray(labels), dtype=torch.float64)
    pw = torch.as_tensor(np.asarray(pos_weight), dtype=torch.float64)
    return torch.nn.functional.binary_cross_entropy_with_logits(z, y, pos_weight=pw, reduction='none').mean(1).numpy()


def _trained(p, k, tmp_path, **kw):
    t = _quiet(p.trainer, k, _model(p), _args(tmp_path), **kw)
    _quiet(t.train)
    return t


def test_eval_loss_is_the_per_row_mean_at_any_eval_batch_size(real, tmp_path):
    t = _trained(real, 0, tmp_path)
    val = t.eval_dataset
    pred = _quiet(t.predict, val)
    losses = _row_losses(pred.predictions, pred.label_ids, t.pos_weight)
    exact = losses.mean()
    assert pred.metrics['test_loss'] == pytest.approx(exact, rel=REL)
    for bs in (7, 100, 128, 1000):
        assert len(val) % bs, 'a short last batch'
        t.args.per_device_eval_batch_size = bs
        shuffled = IndexedDataset(val.source, np.random.default_rng(bs).permutation(val.indices), training=False)
        for ds in (IndexedDataset(val.source, val.indices, training=False), shuffled):
            assert _quiet(t.evaluate, ds)['eval_loss'] == pytest.approx(exact, rel=REL), bs
        # what the Trainer's own loop reports: each batch's mean counts the same, the short last batch included
        order = np.argsort(np.argsort(val.indices))
        batch_means = [losses[order][i:i + bs].mean() for i in range(0, len(val), bs)]
        if bs >= 100: assert abs(np.mean(batch_means) - exact) > 1e-4 * exact, 'the test can tell them apart'


def test_eval_loss_weights_rows_by_their_weight(real, tmp_path):
    w = np.random.default_rng(1).uniform(0.1, 5.0, len(real.comments))
    t = _trained(real, 2, tmp_path, loader_kwargs=dict(weights=w))
    pred = _quiet(t.predict, t.eval_dataset)
    losses = _row_losses(pred.predictions, pred.label_ids, t.pos_weight)
    exact = (losses * w[pred.rows]).sum() / w[pred.rows].sum()
    assert abs(exact - losses.mean()) > 1e-4 * exact                       # the weights matter
    assert pred.metrics['test_loss'] == pytest.approx(exact, rel=REL)
    for bs in (100, 1000):
        t.args.per_device_eval_batch_size = bs
        ds = IndexedDataset(t.eval_dataset.source, t.eval_dataset.indices, training=False, weights=w)
        assert _quiet(t.evaluate, ds)['eval_loss'] == pytest.approx(exact, rel=REL)


def test_default_metrics_are_sklearns_f1(real, tmp_path):
    t = _trained(real, 1, tmp_path)
    ev = _quiet(t.evaluate)
    pred = _quiet(t.predict, t.eval_dataset)
    y, yhat = pred.label_ids.astype(int), pred.probs >= 0.5
    assert yhat.any() and not yhat.all()
    for avg in ('micro', 'macro', 'weighted'):
        sk = f1_score(y, yhat, average=avg, zero_division=0)
        assert ev[f'eval_f1_{avg}'] == pytest.approx(sk, abs=1e-12) and pred.metrics[f'test_f1_{avg}'] == pytest.approx(sk, abs=1e-12)
    per_label = f1_score(y, yhat, average=None, zero_division=0)
    assert [ev[f'eval_f1_{c}'] for c in CYBERBULLY_LABELS] == pytest.approx(per_label.tolist(), abs=1e-12)


def test_oof_from_predict_outputs_equals_the_table_from_rows_and_sigmoid(real, tmp_path):
    from bangla_data.results import OutOfFold
    oof, parts = real.out_of_fold(), []
    for k in range(real.num_folds):
        t = _quiet(real.trainer, k, _model(real, k), _args(tmp_path, max_steps=3))
        _quiet(t.train)
        pred = _quiet(t.predict, t.eval_dataset)
        assert np.array_equal(pred.rows, real.splits[k][1])
        np.testing.assert_allclose(pred.probs, torch.sigmoid(torch.as_tensor(pred.predictions)).numpy(), rtol=1e-6)
        oof.add(pred, fold=k)
        parts.append(real.predictions_table(pred.rows, sigmoid(pred.predictions), fold=k))
    table = oof.finalize()
    by_hand = pd.concat(parts, ignore_index=True).sort_values('index', kind='stable').reset_index(drop=True)
    pd.testing.assert_frame_equal(table, by_hand)
    assert table['index'].tolist() == np.flatnonzero(real.fold_ids >= 0).tolist()
    assert isinstance(oof, OutOfFold)


def test_trainer_all_trains_on_exactly_the_non_test_rows(real, tmp_path):
    from bangla_data.weights import calculate_class_weights
    rest = np.flatnonzero(real.fold_ids != -1)
    assert len(rest) + len(real.test_indices) == len(real.comments) and len(real.test_indices)
    t = _quiet(real.trainer, 'all', _model(real), _args(tmp_path, max_steps=-1, num_train_epochs=1,
                                                         per_device_train_batch_size=256))
    seen, compute_loss = [], t.compute_loss
    def spy(model, inputs, *a, **kw):
        if model.training: seen.append(inputs['index'].numpy().copy())
        return compute_loss(model, inputs, *a, **kw)
    t.compute_loss = spy
    _quiet(t.train)
    trained = np.concatenate(seen)
    assert np.array_equal(np.sort(trained), rest)                          # every non-test row, once in the epoch
    assert torch.allclose(t.pos_weight, torch.as_tensor(_quiet(calculate_class_weights, real.labels[rest]),
                                                        dtype=torch.float32))
    assert np.array_equal(np.sort(t.eval_dataset.indices), real.test_indices)
    pred = _quiet(t.predict, t.eval_dataset)
    assert np.array_equal(pred.rows, real.test_indices)
    exact = _row_losses(pred.predictions, pred.label_ids, t.pos_weight).mean()
    assert _quiet(t.evaluate)['eval_loss'] == pytest.approx(exact, rel=REL)
    test = real.predictions_table(pred.rows, pred.probs)
    assert set(test['fold']) == {'test'}


def test_trainer_all_without_a_test_split_has_no_eval(banglabert, cache, tmp_path):
    from bangla_data.env import BanglaDataError
    from bangla_data.pipeline import prepare
    p = _quiet(prepare, CYBERBULLY_CSV, tokenizer=banglabert, text_column='comment', label_columns=CYBERBULLY_LABELS,
               cache_dir=cache, num_folds=5, max_length=64, verbose=False)
    t = _quiet(p.trainer, 'all', _model(p), _args(tmp_path, max_steps=2))
    assert t.eval_dataset is None and np.array_equal(np.sort(t.train_dataset.indices), np.arange(len(p.comments)))
    _quiet(t.train)
    with pytest.raises(BanglaDataError, match="eval_strategy='no'"):
        _quiet(p.trainer, 'all', _model(p), _args(tmp_path, eval_strategy='steps', eval_steps=1))


def test_torchrun_two_ranks_eval_loss_is_the_per_row_mean(real, cache, tmp_path):
    out = tmp_path / 'loss.json'
    cmd = TORCHRUN_2 + [str(HERE / 'trainer_loss_script.py'), str(out), str(cache), str(tmp_path / 'run')]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=900)
    written = sorted(q.name for q in tmp_path.glob('loss.*.json'))
    assert r.returncode == 0, f'results written: {written}\n' + r.stdout[-3000:] + r.stderr[-4000:]
    r0, r1 = (json.loads((tmp_path / f'loss.{i}.json').read_text()) for i in (0, 1))
    assert (r0['rank'], r1['rank'], r0['world']) == (0, 1, 2)
    assert r0['n_val'] % 2 == 1                                            # the shards repeat a row
    assert r0['rows'] == r0['val']                                         # each validation row once, in row order
    exact = _row_losses(r0['logits'], r0['labels'], r0['pos_weight']).mean()
    for r in (r0, r1):
        for what in ('eval_loss', 'test_loss'):
            assert len(r[what]) == 3
            for bs, loss in r[what].items(): assert loss == pytest.approx(exact, rel=REL), (r['rank'], what, bs)
    y, yhat = np.array(r0['labels'], dtype=int), sigmoid(r0['logits']) >= 0.5
    for f1 in r0['f1'].values():
        assert f1['eval_f1_macro'] == pytest.approx(f1_score(y, yhat, average='macro', zero_division=0), abs=1e-12)
