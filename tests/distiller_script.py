"""Runs `prepared.distiller` for tests/test_distiller.py, in a fresh process (or one rank of torchrun).

usage: distiller_script.py OUT.json CACHE_DIR OUTPUT_DIR MODE
  MODE first    per method: train STEPS steps uninterrupted; then again with a checkpoint at STOP, stopping there
  MODE resume   per method: resume from OUTPUT_DIR/<method>/checkpoint-STOP and train to STEPS
  MODE ranks    (under torchrun) multi_level for 4 steps on each rank's shard, then evaluate and predict

Every mode records each training step's rows and exact loss and a digest of the weights (student and projection);
the sample's two views come from `sample_views`, the tiny random BERTs from `tiny_bert` (the tests use them too).
"""
import faulthandler, hashlib, json, os, sys, warnings
faulthandler.enable()   # a crash prints where it happened
warnings.simplefilter('ignore')
import numpy as np
import torch

METHODS = ('logit', 'hidden', 'attention', 'multi_level')
FOLD, STEPS, STOP = 1, 14, 5            # 11 batches of 32 per epoch: the resumed run crosses into epoch 1
OPTIONS = {'logit': dict(alpha=0.3, temperature=3.0), 'hidden': dict(hidden=2.0), 'attention': dict(attention=5.0),
           'multi_level': dict(level='word')}


def sample_views(cache):
    "The bundled sample with two views: a 300-token student tokenizer (64 tokens), a 2,000-token teacher one (32)."
    from bangla_data.pipeline import prepare
    from bangla_data.sample import sample_tokenizer
    p = prepare(tokenizer={'teacher': sample_tokenizer(vocab_size=2000), 'student': sample_tokenizer(vocab_size=300)},
                max_length={'teacher': 32, 'student': 64}, cache_dir=cache, num_folds=5, verbose=False,
                report_unk=False)
    assert all(v.tokenized.spans is not None for v in p.views.values())   # the cache keeps the spans
    return p


def tiny_bert(p, view, width, layers, heads, seed=0):
    "A tiny random multi-label BERT over `view`'s tokenizer (eager attention: its maps are returned)."
    from transformers import BertConfig, BertForSequenceClassification
    torch.manual_seed(seed)
    return BertForSequenceClassification(BertConfig(
        vocab_size=len(p.views[view].tokenizer), hidden_size=width, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=2 * width, max_position_embeddings=128,
        num_labels=len(p.label_columns), problem_type='multi_label_classification', attn_implementation='eager'))


def digest(module) -> str:
    "A hash of every tensor of `module`'s state dict, by name."
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode()); h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def run(p, method, outdir, steps=STEPS, stop=None, resume=False, ranks=False):
    "Train `method` on fold FOLD; `(trainer, record)`: each step's rows and loss, the weights' digests."
    from transformers import TrainerCallback, TrainingArguments
    args = TrainingArguments(output_dir=outdir, max_steps=steps, per_device_train_batch_size=32,
                             per_device_eval_batch_size=48, learning_rate=1e-3, report_to=[], use_cpu=True,
                             save_strategy='steps' if stop else 'no', save_steps=stop or 1, disable_tqdm=True, seed=5,
                             logging_steps=1000, ddp_backend='gloo' if ranks else None, ddp_find_unused_parameters=False)
    seen = []

    class Stop(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if stop and state.global_step >= stop: control.should_training_stop = True

    teacher = tiny_bert(p, 'teacher', 24, 4, 3, seed=1)
    before = digest(teacher)
    t = p.distiller(FOLD, tiny_bert(p, 'student', 16, 2, 2), teacher, args, method=method, callbacks=[Stop()],
                    **OPTIONS[method])
    compute_loss = t.compute_loss
    def spy(model, inputs, *a, **k):              # each training step's rows and exact loss
        rows, loss = inputs.get('index'), compute_loss(model, inputs, *a, **k)
        if model.training: seen.append([rows.tolist(), float(loss[0] if isinstance(loss, tuple) else loss)])
        return loss
    t.compute_loss = spy
    t.train(resume_from_checkpoint=os.path.join(outdir, f'checkpoint-{STOP}') if resume else None)
    frozen = not any(q.requires_grad for q in teacher.parameters()) and not teacher.training
    return t, dict(seen=seen, digest=digest(t.model), student=digest(t.student), global_step=t.state.global_step,
                   teacher_unchanged=digest(teacher) == before, teacher_frozen=frozen)


def main(out, cache, outdir, mode):
    if mode == 'ranks': return ranks(out, cache, outdir)
    p, res = sample_views(cache), {}
    for method in METHODS:
        if mode == 'first':
            res[method] = dict(full=run(p, method, os.path.join(outdir, 'full', method))[1],
                               stop=run(p, method, os.path.join(outdir, method), stop=STOP)[1])
        else: res[method] = run(p, method, os.path.join(outdir, method), resume=True)[1]
    with open(out, 'w') as f: json.dump(res, f)


def ranks(out, cache, outdir):
    "Two ranks train one student (and projection); each evaluates and predicts the fold's validation rows."
    import torch.distributed as dist
    from transformers import TrainingArguments
    TrainingArguments(output_dir=outdir, use_cpu=True, ddp_backend='gloo').device   # torch.distributed is set up
    p = sample_views(cache)
    t, rec = run(p, 'multi_level', outdir, steps=4, ranks=True)
    ev, pred = t.evaluate(), t.predict(t.eval_dataset)
    shards = [None, None]
    dist.all_gather_object(shards, sorted({i for rows, _ in rec['seen'] for i in rows}))
    rec.update(rank=dist.get_rank(), world=dist.get_world_size(), eval_loss=ev['eval_loss'],
               test_loss=pred.metrics['test_loss'], rows=pred.rows.tolist(), val=p.splits[FOLD][1].tolist(),
               shards=shards, n_val=len(t.eval_dataset), logits=pred.predictions.tolist(),
               labels=pred.label_ids.tolist(), pos_weight=t.pos_weight.tolist())
    with open(out.replace('.json', f'.{dist.get_rank()}.json'), 'w') as f: json.dump(rec, f)
    dist.barrier()       # every rank has written its results; leave without the teardown that sometimes aborts
    os._exit(0)          # a gloo rank at exit (see tests/trainer_script.py)


if __name__ == '__main__':
    main(*sys.argv[1:5])
