"""Issue 24 end to end: `prepare(..., task='multiclass')` on a real categorical file — class ids and counts equal the
file's, folds stratified by class (within 1 point) and leak-free, fold weights equal scikit-learn's 'balanced', the
Trainer's `eval_loss` equal to `F.cross_entropy` with those weights (in process and on 2 ranks), metrics equal
scikit-learn's, the CLI on a categorical CSV, a multiclass distiller, the refusal without `task`, and `classes=`."""
import json, os, subprocess, sys, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import BANGLABERT_DIR, TORCHRUN_2, TOXIC_CSV, TOXIC_LABELS, load_real
from bangla_data.env import BanglaDataError
from bangla_data.labels import multihot_to_categorical

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(HERE.parent), 'HF_HUB_OFFLINE': '1'}
REL = 1e-6
OPTS = dict(label_columns='label', task='multiclass', text_column='text', num_folds=5, test_size=0.1, max_length=64,
            verbose=False, report_unk=False)


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return fn(*a, **kw)


@pytest.fixture(scope='module')
def cat_csv(tmp_path_factory):
    "The toxic comments with a categorical column `label`: each comment's first positive label, or 'none'."
    comments, y = load_real(TOXIC_CSV, 'text', TOXIC_LABELS)
    out = tmp_path_factory.mktemp('cat') / 'toxic_categorical.csv'
    pd.DataFrame({'text': comments, 'label': multihot_to_categorical(y, TOXIC_LABELS)}).to_csv(out, index=False)
    return out


@pytest.fixture(scope='module')
def cache(tmp_path_factory): return tmp_path_factory.mktemp('cache')


@pytest.fixture(scope='module')
def mc(cat_csv, banglabert, cache):
    from bangla_data.pipeline import prepare
    return _quiet(prepare, cat_csv, tokenizer=banglabert, cache_dir=cache, **OPTS)


def _file(cat_csv): return pd.read_csv(cat_csv, dtype=str, keep_default_na=False)


@pytest.mark.shared
def test_class_ids_and_counts_equal_the_file(mc, cat_csv):
    f = _file(cat_csv)
    kept = f['label'].iloc[mc.row_ids - 2]                       # file rows (header = 1) of the rows kept
    assert mc.task == 'multiclass' and mc.classes == sorted(f['label'].unique())
    assert mc.labels.dtype == np.int64 and mc.labels.shape == (len(mc.comments),)
    assert np.asarray(mc.classes, dtype=object)[mc.labels].tolist() == kept.tolist()
    assert mc.load_info.labels.table['count'].to_dict() == kept.value_counts().to_dict()
    assert mc.load_info.to_dict()['labels']['counts'] == {k: int(v) for k, v in kept.value_counts().items()}
    assert (mc.tokenized.labels.sum(1) == 1).all()               # the cache holds one-hot rows
    np.testing.assert_array_equal(np.asarray(mc.tokenized.labels).argmax(1), mc.labels)


@pytest.mark.shared
def test_folds_stratified_by_class_and_leak_free(mc):
    from bangla_data.duplicates import text_ids
    y, C, tid = mc.labels, len(mc.classes), text_ids(mc.comments)
    rest = np.flatnonzero(mc.fold_ids >= 0)
    overall = np.bincount(y[rest], minlength=C) / len(rest)
    dev = max(np.abs(np.bincount(y[v], minlength=C) / len(v) - overall).max() for _, v in mc.splits) * 100
    assert dev < 1.0, dev                                        # every class, every fold, within 1 point
    test = mc.test_idx
    all_rate = np.bincount(y, minlength=C) / len(y)
    assert np.abs(np.bincount(y[test], minlength=C) / len(test) - all_rate).max() * 100 < 1.0
    assert mc.fold_report.val_in_train == 0 and mc.fold_report.max_deviation_pp < 1.0
    assert list(mc.fold_report.overall.index) == mc.classes
    for tr, va in mc.splits: assert not np.intersect1d(tid[tr], tid[va]).size
    assert not np.intersect1d(tid[test], tid[mc.fold_ids >= 0]).size
    print(f"max per-class fold deviation {dev:.3f} pp")


@pytest.mark.shared
def test_fold_weights_equal_sklearn_balanced(mc):
    from sklearn.utils.class_weight import compute_class_weight
    C = len(mc.classes)
    for k in list(range(mc.num_folds)) + ['all']:
        tr = mc.partition.fold(k)[0]
        w = mc.class_weights(k)
        np.testing.assert_allclose(w.numpy(), compute_class_weight('balanced', classes=np.arange(C), y=mc.labels[tr]),
                                   rtol=1e-6)
    _, _, w0 = mc.fold(0)
    assert w0.shape == (C,) and (w0 > 0).all() and torch.equal(w0, mc.class_weights(0))
    assert (mc.fold(0, max_weight=2.0)[2] <= 2.0).all()
    with pytest.raises(BanglaDataError, match="does not fit task='multiclass'"): mc.fold(0, weight_method='ratio')


def _model(n_vocab, n_classes, seed=0):
    from transformers import ElectraConfig, ElectraForSequenceClassification
    torch.manual_seed(seed)
    return ElectraForSequenceClassification(ElectraConfig(
        vocab_size=n_vocab, embedding_size=16, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, num_labels=n_classes))


def _args(tmp_path, **kw):
    from transformers import TrainingArguments
    kw = {**dict(max_steps=15, per_device_train_batch_size=64, per_device_eval_batch_size=128, learning_rate=2e-3,
                 report_to=[], use_cpu=True, save_strategy='no', disable_tqdm=True, seed=3), **kw}
    return TrainingArguments(output_dir=str(tmp_path / 'run'), **kw)


def _direct_ce(logits, labels, weight):
    return torch.nn.functional.cross_entropy(torch.as_tensor(np.asarray(logits), dtype=torch.float64),
                                             torch.as_tensor(np.asarray(labels)),
                                             weight=torch.as_tensor(np.asarray(weight), dtype=torch.float64)).item()


@pytest.mark.shared
def test_trainer_eval_loss_is_cross_entropy_and_metrics_are_sklearns(mc, tmp_path):
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
    from bangla_data.dataset import IndexedDataset
    t = _quiet(mc.trainer, 1, _model(len(mc.tokenizer), len(mc.classes)), _args(tmp_path))
    _quiet(t.train)
    pred, ev = _quiet(t.predict, t.eval_dataset), _quiet(t.evaluate)
    np.testing.assert_array_equal(pred.rows, mc.splits[1][1])
    np.testing.assert_array_equal(pred.label_ids, mc.labels[mc.splits[1][1]])
    direct = _direct_ce(pred.logits, pred.label_ids, mc.fold(1)[2])
    print(f"eval_loss {ev['eval_loss']!r} direct CE {direct!r} rel diff {abs(ev['eval_loss'] - direct) / direct:.2e}")
    assert ev['eval_loss'] == pytest.approx(direct, rel=REL) and pred.metrics['test_loss'] == pytest.approx(direct, rel=REL)
    for bs in (7, 1000):                                         # any eval batch size, any row order
        t.args.per_device_eval_batch_size = bs
        shuffled = IndexedDataset(t.eval_dataset.source, np.random.default_rng(bs).permutation(t.eval_dataset.indices),
                                  training=False, task='multiclass')
        assert _quiet(t.evaluate, shuffled)['eval_loss'] == pytest.approx(direct, rel=REL)
    np.testing.assert_allclose(pred.probs.sum(1), 1.0, atol=1e-12)
    y, yhat = pred.label_ids, pred.probs.argmax(1)
    labels = np.arange(len(mc.classes))
    assert ev['eval_accuracy'] == pytest.approx(accuracy_score(y, yhat), abs=1e-12)
    for avg in ('macro', 'weighted'):
        assert ev[f'eval_f1_{avg}'] == pytest.approx(f1_score(y, yhat, average=avg, zero_division=0),
                                                     abs=1e-12)
    P, R, F, _ = precision_recall_fscore_support(y, yhat, labels=labels, zero_division=0)
    for j, c in enumerate(mc.classes):
        assert (ev[f'eval_precision_{c}'], ev[f'eval_recall_{c}'], ev[f'eval_f1_{c}']) == \
            pytest.approx((P[j], R[j], F[j]), abs=1e-12)
    # the out-of-fold table of this fold's rows: prob_<class> and the predicted class by name
    table = mc.predictions_table(pred)
    assert list(table['predicted']) == list(np.asarray(mc.classes)[yhat])
    assert [f'prob_{c}' for c in mc.classes] == [c for c in table.columns if c.startswith('prob_')]


@pytest.mark.shared
def test_eval_loss_on_two_ranks_is_cross_entropy(mc, cat_csv, cache, tmp_path):
    out = tmp_path / 'res.json'
    cmd = TORCHRUN_2 + [str(HERE / 'multiclass_loss_script.py'), str(out), str(cat_csv), str(cache), str(tmp_path / 'run')]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ranks = [json.loads((tmp_path / f'res.{i}.json').read_text()) for i in range(2)]
    r0 = ranks[0]
    assert r0['world'] == 2 and r0['rows'] == r0['val'] and len(r0['rows']) == r0['n_val']
    direct = _direct_ce(r0['logits'], r0['labels'], r0['class_weights'])
    for res in ranks:
        for v in list(res['eval_loss'].values()) + list(res['test_loss'].values()):
            assert v == pytest.approx(direct, rel=REL)
    print(f"2 ranks: eval_loss {r0['eval_loss']} direct {direct!r}")


@pytest.mark.shared
def test_cli_on_a_categorical_csv(cat_csv, tmp_path):
    cmd = [sys.executable, '-c', 'import sys; from bangla_data.cli import main; sys.exit(main())', 'prepare',
           str(cat_csv), '--task', 'multiclass', '--labels', 'label', '--text-column', 'text', '--tokenizer',
           str(BANGLABERT_DIR), '--folds', '3', '--max-length', '64', '--no-report-unk', '--cache-dir',
           str(tmp_path / 'c'), '--json', '--save-splits', str(tmp_path / 'splits.csv')]
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(r.stdout)
    kept = _file(cat_csv)['label']
    assert doc['config']['task'] == 'multiclass' and doc['config']['classes'] == sorted(kept.unique())
    assert doc['load']['labels']['counts'] == {k: int(v) for k, v in kept.value_counts().items()}
    assert all(len(w) == len(doc['config']['classes']) for w in doc['class_weights'].values())
    assert doc['folds']['max_deviation_pp'] < 1.0 and doc['folds']['val_in_train'] == 0
    text = subprocess.run(cmd[:-3] + ['--splits', str(tmp_path / 'splits.csv')], capture_output=True, text=True,
                          env=ENV, timeout=600)
    assert text.returncode == 0 and 'Class distribution' in text.stdout and "'balanced'" in text.stdout, text.stderr
    bad = subprocess.run(cmd[:5] + ['--labels', 'label', '--text-column', 'text', '--quiet'], capture_output=True,
                         text=True, env=ENV, timeout=600)
    assert bad.returncode == 2 and '--task multiclass --labels label' in bad.stderr, bad.stderr


@pytest.mark.shared
def test_refused_without_task(cat_csv):
    from bangla_data.pipeline import prepare
    with pytest.raises(BanglaDataError, match=r"must hold 0 or 1.*task='multiclass'.*--task multiclass --labels label"):
        _quiet(prepare, cat_csv, label_columns='label', text_column='text', tokenizer=str(BANGLABERT_DIR))


@pytest.mark.shared
def test_classes_fix_the_order_across_datasets_and_name_unknown_values(cat_csv, tmp_path):
    from bangla_data.loading import load_and_preprocess_data
    f = _file(cat_csv)
    a, b = tmp_path / 'a.csv', tmp_path / 'b.csv'
    f.iloc[: len(f) // 2].to_csv(a, index=False)
    f.iloc[len(f) // 2:][lambda d: d['label'] != 'threat'].to_csv(b, index=False)   # b lacks a class
    classes = sorted(f['label'].unique())[::-1]
    kw = dict(text_column='text', label_columns='label', task='multiclass', verbose=False, return_info=True)
    _, ya, ia = _quiet(load_and_preprocess_data, a, classes=classes, **kw)
    _, yb, ib = _quiet(load_and_preprocess_data, b, classes=classes, **kw)
    assert ia.classes == ib.classes == classes
    assert np.asarray(classes)[yb].tolist() == pd.read_csv(b, dtype=str, keep_default_na=False)['label'].iloc[
        ib.row_numbers - 2].tolist()
    assert ib.labels.table.loc['threat', 'count'] == 0 and any("['threat'] have no row" in w for w in ib.warnings)
    assert _quiet(load_and_preprocess_data, b, **kw)[2].classes != classes          # sorted without classes=
    with pytest.raises(BanglaDataError, match=r"b\.csv: label column 'label' has values not among classes=.*'none' at "
                                              r"row\(s\) \d.*--classes"):
        _quiet(load_and_preprocess_data, b, classes=[c for c in classes if c != 'none'], **kw)


def test_a_multiclass_distiller_logit_and_multi_level(tmp_path):
    "On the sample's categorical column, two views: finite losses, the student's predictions in row order, exact CE."
    from transformers import BertConfig, BertForSequenceClassification, TrainingArguments
    from bangla_data.pipeline import prepare
    from bangla_data.sample import sample_tokenizer, write_categorical_sample
    p = _quiet(prepare, write_categorical_sample(tmp_path / 'cat.csv'), label_columns='label', task='multiclass',
               tokenizer={'teacher': sample_tokenizer(vocab_size=2000), 'student': sample_tokenizer(vocab_size=300)},
               max_length={'teacher': 32, 'student': 64}, cache_dir=tmp_path / 'c', num_folds=5, verbose=False,
               report_unk=False)

    def bert(view, width, layers, heads, seed=0):
        torch.manual_seed(seed)
        return BertForSequenceClassification(BertConfig(
            vocab_size=len(p.views[view].tokenizer), hidden_size=width, num_hidden_layers=layers,
            num_attention_heads=heads, intermediate_size=2 * width, max_position_embeddings=128,
            num_labels=len(p.classes), attn_implementation='eager'))
    args = TrainingArguments(output_dir=str(tmp_path / 'run'), max_steps=3, per_device_train_batch_size=32,
                             per_device_eval_batch_size=64, learning_rate=1e-3, report_to=[], use_cpu=True,
                             save_strategy='no', disable_tqdm=True, seed=3, logging_steps=1)
    teacher = bert('teacher', 24, 4, 3, seed=1)
    for method in ('logit', 'hidden', 'attention', 'multi_level'):
        d = _quiet(p.distiller, 0, bert('student', 16, 2, 2), teacher, args, method=method)
        _quiet(d.train)
        losses = [h['loss'] for h in d.state.log_history if 'loss' in h]
        assert len(losses) == 3 and np.isfinite(losses).all() and d.objective.task == 'multiclass'
        out, ev = _quiet(d.predict, d.eval_dataset), _quiet(d.evaluate)
        np.testing.assert_array_equal(out.rows, p.splits[0][1])
        assert ev['eval_loss'] == pytest.approx(_direct_ce(out.logits, out.label_ids, d.class_weights), rel=REL)
    with pytest.raises(BanglaDataError, match=rf"config.num_labels=2.*num_labels={len(p.classes)}"):
        p.distiller(0, BertForSequenceClassification(BertConfig(vocab_size=300, hidden_size=16, num_hidden_layers=1,
                                                                num_attention_heads=2, num_labels=2)), teacher, args)
