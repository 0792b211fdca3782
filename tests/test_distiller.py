"""Distillation in the 🤗 Trainer (issue 22, item 4): `prepared.distiller(k, student, teacher, args, method=...)` trains a
student on its view against a frozen teacher on its own, for each method; the run resumes exactly from a checkpoint in
a fresh process (student, projection, next batch); two ranks under torchrun train one student; `predict` is the
student's, in row order; `eval_loss` is the student's BCE over the validation rows; a single-view Trainer given a
two-view batch says to use `distiller`."""
import json, os, subprocess, sys, warnings
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip('accelerate')
from conftest import CYBERBULLY_CSV, CYBERBULLY_LABELS, TORCHRUN_2  # noqa: E402
from distiller_script import METHODS, OPTIONS, STEPS, STOP, digest, sample_views, tiny_bert  # noqa: E402
from bangla_data.env import BanglaDataError  # noqa: E402

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / 'distiller_script.py'
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(HERE.parent), 'HF_HUB_OFFLINE': '1'}
REL = 1e-6                                                         # eval loss vs the direct BCE: relative error


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return fn(*a, **kw)


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp('cache')


@pytest.fixture(scope='module')
def views(cache):
    return _quiet(sample_views, cache)


def _args(tmp_path, **kw):
    from transformers import TrainingArguments
    kw = {**dict(max_steps=3, per_device_train_batch_size=32, per_device_eval_batch_size=48, learning_rate=1e-3,
                 report_to=[], use_cpu=True, save_strategy='no', disable_tqdm=True, seed=3, logging_steps=1), **kw}
    return TrainingArguments(output_dir=str(tmp_path / 'run'), **kw)


def _student_bce(student, td, rows, labels, pos_weight):
    "The student called directly on its view of `rows`: `(logits, the mean BCE with pos_weight)` in float64."
    b = td.batch(rows)
    student.eval()
    with torch.no_grad():
        z = student(input_ids=torch.as_tensor(b['input_ids']), attention_mask=torch.as_tensor(b['attention_mask'])).logits
    y, pw = torch.as_tensor(labels, dtype=torch.float64), torch.as_tensor(np.asarray(pos_weight), dtype=torch.float64)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(z.double(), y, pos_weight=pw, reduction='none')
    return z.numpy(), bce.mean(1).mean().item()


@pytest.mark.parametrize('method', METHODS)
def test_each_method_trains_the_student_and_predicts_its_rows_in_order(views, tmp_path, method):
    p, k = views, 0
    teacher, student = tiny_bert(p, 'teacher', 24, 4, 3, seed=1), tiny_bert(p, 'student', 16, 2, 2)
    t0, s0 = digest(teacher), digest(student)
    t = _quiet(p.distiller, k, student, teacher, _args(tmp_path), method=method, **OPTIONS[method])
    proj0 = None if t.objective.projection is None else t.objective.projection.weight.detach().clone()
    _quiet(t.train)
    losses = [h['loss'] for h in t.state.log_history if 'loss' in h]
    assert len(losses) == 3 and np.isfinite(losses).all()
    assert digest(student) != s0 and t.student is student                      # the student trained
    assert digest(teacher) == t0 and not teacher.training                       # the teacher did not
    assert not any(q.requires_grad for q in teacher.parameters())
    in_opt = {id(q) for g in t.optimizer.param_groups for q in g['params']}
    assert all(id(q) in in_opt for q in t.model.parameters() if q.requires_grad)
    if method in ('hidden', 'multi_level'):                                     # 16 -> 24: a projection, trained
        assert not torch.equal(t.objective.projection.weight, proj0)
    else: assert proj0 is None
    pred, ev = _quiet(t.predict, t.eval_dataset), _quiet(t.evaluate)
    val = p.splits[k][1]
    assert np.array_equal(pred.rows, val) and np.array_equal(pred.label_ids, p.labels[val])
    logits, bce = _student_bce(student, p.views['student'].tokenized, val, p.labels[val], t.pos_weight)
    np.testing.assert_allclose(pred.predictions, logits, atol=1e-5)             # the student's own logits
    assert ev['eval_loss'] == pytest.approx(bce, rel=REL) and pred.metrics['test_loss'] == pytest.approx(bce, rel=REL)
    if method != 'logit':                                                       # not the distillation objective
        b = next(iter(t.get_train_dataloader()))
        t.model.train()
        assert abs(t.compute_loss(t.model, dict(b)).item() - bce) > 1e-3


@pytest.fixture(scope='module')
def resumed(tmp_path_factory, cache):
    "Per method: an uninterrupted run, one stopped at checkpoint STOP, and its resumption in a fresh process."
    d = tmp_path_factory.mktemp('resume')
    res = {}
    for mode in ('first', 'resume'):
        out = d / f'{mode}.json'
        r = subprocess.run([sys.executable, str(SCRIPT), str(out), str(cache), str(d / 'run'), mode], env=ENV,
                           capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
        res[mode] = json.loads(out.read_text())
    return res


@pytest.mark.parametrize('method', METHODS)
def test_resume_from_a_checkpoint_in_a_fresh_process_is_exact(resumed, method):
    full, stop = resumed['first'][method]['full'], resumed['first'][method]['stop']
    rest = resumed['resume'][method]
    assert len(full['seen']) == STEPS and stop['seen'] == full['seen'][:STOP] and stop['digest'] != full['digest']
    assert np.isfinite([l for _, l in full['seen']]).all()
    assert rest['global_step'] == STEPS
    assert rest['seen'] == full['seen'][STOP:]               # the same rows, in the same order, the same losses
    assert rest['digest'] == full['digest']                  # student and projection: the same weights, bit for bit
    assert all(r['teacher_unchanged'] and r['teacher_frozen'] for r in (full, stop, rest))


def test_torchrun_two_ranks_train_one_student_and_predict_each_row_once(cache, tmp_path):
    out = tmp_path / 'ranks.json'
    cmd = TORCHRUN_2 + [str(SCRIPT), str(out), str(cache), str(tmp_path / 'run'), 'ranks']
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=900)
    written = sorted(q.name for q in tmp_path.glob('ranks.*.json'))
    assert r.returncode == 0, f'results written: {written}\n' + r.stdout[-3000:] + r.stderr[-4000:]
    r0, r1 = (json.loads((tmp_path / f'ranks.{i}.json').read_text()) for i in (0, 1))
    assert (r0['rank'], r1['rank'], r0['world']) == (0, 1, 2)
    assert r0['digest'] == r1['digest']                      # one student and one projection: DDP synced both
    s0, s1 = r0['shards']
    assert len(set(s0) & set(s1)) <= 1 and len(s0) > 32      # each rank trained on its own shard
    assert r0['n_val'] % 2 == 1 and r0['rows'] == r0['val'] == r1['rows']   # each row once, in row order
    z, y = torch.tensor(r0['logits'], dtype=torch.float64), torch.tensor(r0['labels'], dtype=torch.float64)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        z, y, pos_weight=torch.tensor(r0['pos_weight'], dtype=torch.float64), reduction='none').mean(1).mean().item()
    for r in (r0, r1):
        assert r['eval_loss'] == pytest.approx(bce, rel=REL) and r['test_loss'] == pytest.approx(bce, rel=REL)
        assert np.isfinite([l for _, l in r['seen']]).all() and r['teacher_unchanged'] and r['teacher_frozen']


def test_a_single_view_trainer_refuses_two_view_batches_saying_what_to_use(views, tmp_path):
    p = views
    t = _quiet(p.trainer, 0, tiny_bert(p, 'student', 16, 2, 2), _args(tmp_path))
    for step in (t.train, t.evaluate):
        with pytest.raises(BanglaDataError, match=r"2 views \('teacher', 'student'\)") as e: _quiet(step)
        assert "use prepared.distiller(k, student, teacher, args, method=" in str(e.value)
        assert "prepared.trainer(k, model, args, view='teacher')" in str(e.value)
    t = _quiet(p.trainer, 0, tiny_bert(p, 'student', 16, 2, 2), _args(tmp_path), view='student')   # what it says
    _quiet(t.train)
    assert np.array_equal(_quiet(t.predict, t.eval_dataset).rows, p.splits[0][1])


def test_what_distiller_refuses(views, tmp_path):
    p, args = views, _args(tmp_path)
    s, teacher = tiny_bert(p, 'student', 16, 2, 2), tiny_bert(p, 'teacher', 24, 4, 3, seed=1)
    cases = [(dict(method='soft'), "method must be one of"), (dict(hidden=1.0), "method 'logit' has no hidden term"),
             (dict(teacher_view='big'), "view 'big' is not one of this data's views"),
             (dict(teacher=s), "shares parameters with the student"),
             (dict(teacher=None), "pass the teacher model or its stored logits"),
             (dict(teacher=None, method='hidden', teacher_outputs=object()), "needs the teacher model")]
    for kw, msg in cases:
        kw = {'teacher': teacher, **kw}
        with pytest.raises(BanglaDataError, match=msg): _quiet(p.distiller, 0, s, kw.pop('teacher'), args, **kw)
    teacher.set_attn_implementation('sdpa')          # 🤗's default: output_attentions=True gives an empty tuple
    for method in ('attention', 'multi_level'):      # refused before training, saying what to call
        with pytest.raises(BanglaDataError, match=r"teacher.set_attn_implementation\('eager'\)"):
            _quiet(p.distiller, 0, s, teacher, args, method=method)
    _quiet(p.distiller, 0, s, teacher, args, method='hidden')    # hidden states come with any attention


def test_one_view_serves_logit_distillation_only(tmp_path):
    "With one tokenizer both models read the same batches: 'logit' trains, the aligned methods say what they need."
    from bangla_data.pipeline import prepare
    from bangla_data.sample import sample_tokenizer
    from transformers import BertConfig, BertForSequenceClassification
    p = _quiet(prepare, tokenizer=sample_tokenizer(vocab_size=300), cache_dir=tmp_path / 'c', num_folds=5,
               verbose=False, report_unk=False)
    def bert(w, seed):
        torch.manual_seed(seed)
        return BertForSequenceClassification(BertConfig(vocab_size=len(p.tokenizer), hidden_size=w, num_hidden_layers=1,
                                                        num_attention_heads=2, intermediate_size=2 * w,
                                                        num_labels=len(p.label_columns)))
    teacher = bert(24, 1)
    t0 = digest(teacher)
    t = _quiet(p.distiller, 0, bert(16, 0), teacher, _args(tmp_path))
    _quiet(t.train)
    assert np.isfinite([h['loss'] for h in t.state.log_history if 'loss' in h]).all() and digest(teacher) == t0
    with pytest.raises(BanglaDataError, match=r"two views of the data, aligned: prepare\(tokenizer="):
        _quiet(p.distiller, 0, bert(16, 0), teacher, _args(tmp_path), method='hidden')


def test_stored_teacher_logits_train_the_student_as_the_live_teacher(views, tmp_path):
    from bangla_data.distillation import TeacherOutputStore, data_fingerprint, teacher_outputs
    p = views
    teacher = tiny_bert(p, 'teacher', 24, 4, 3, seed=1)
    store, fp = TeacherOutputStore(tmp_path / 'store'), data_fingerprint(p.comments, p.labels)
    loader = p.fold(2, batch_size=64, num_workers=0, shuffle=False)[0]
    store.save('tiny', fp, 2, *teacher_outputs(teacher, loader, view='teacher'))
    # each built right before it trains: the Trainer seeds at construction, and building a model draws from the RNG
    live = _quiet(p.distiller, 2, tiny_bert(p, 'student', 16, 2, 2), teacher, _args(tmp_path), alpha=0.1)
    _quiet(live.train)
    read = _quiet(p.distiller, 2, tiny_bert(p, 'student', 16, 2, 2), None, _args(tmp_path), alpha=0.1,
                  teacher_outputs=store.load('tiny', fp, 2))
    _quiet(read.train)
    for a, b in zip(live.student.parameters(), read.student.parameters()): torch.testing.assert_close(a, b)
    assert read.teacher is None
    with pytest.raises(BanglaDataError, match="not among the"):                 # another fold's rows: said at once
        _quiet(p.distiller, 3, tiny_bert(p, 'student', 16, 2, 2), None, _args(tmp_path),
               teacher_outputs=store.load('tiny', fp, 2))


def test_real_data_banglabert_teacher_mbert_student(banglabert, mbert, tmp_path):
    "The real tokenizers on 1,500 cyberbullying comments: multi_level trains, the eval loss is the student's BCE."
    import pandas as pd
    from transformers import BertConfig, BertForSequenceClassification
    from bangla_data.pipeline import prepare
    df = pd.read_csv(CYBERBULLY_CSV, dtype=str, keep_default_na=False).head(1500)
    p = _quiet(prepare, df, tokenizer={'teacher': banglabert, 'student': mbert}, text_column='comment',
               label_columns=CYBERBULLY_LABELS, max_length={'teacher': 64, 'student': 96}, cache_dir=tmp_path / 'c',
               num_folds=5, verbose=False, report_unk=False)
    assert all(v.tokenized.spans is not None for v in p.views.values())   # the cache keeps the spans
    def bert(view, w, layers, seed):
        torch.manual_seed(seed)
        return BertForSequenceClassification(BertConfig(
            vocab_size=len(p.views[view].tokenizer), hidden_size=w, num_hidden_layers=layers, num_attention_heads=2,
            intermediate_size=2 * w, num_labels=len(p.label_columns), attn_implementation='eager'))
    teacher, student = bert('teacher', 32, 2, 1), bert('student', 16, 1, 0)
    t = _quiet(p.distiller, 1, student, teacher, _args(tmp_path, per_device_eval_batch_size=128), method='multi_level')
    _quiet(t.train)
    assert np.isfinite([h['loss'] for h in t.state.log_history if 'loss' in h]).all()
    pred = _quiet(t.predict, t.eval_dataset)
    val = p.splits[1][1]
    assert np.array_equal(pred.rows, val)
    _, bce = _student_bce(student, p.views['student'].tokenized, val, p.labels[val], t.pos_weight)
    assert _quiet(t.evaluate)['eval_loss'] == pytest.approx(bce, rel=REL)
