"""Runs the 🤗 Trainer on bangla_data's loaders for tests/test_trainer.py, in a fresh process (or one rank of torchrun).

usage: trainer_script.py OUT.json CACHE_DIR OUTPUT_DIR MODE [STEP]
  MODE full      train 10 steps, record every training batch's rows
  MODE stop      train with a checkpoint every STEP steps and stop after STEP steps
  MODE resume    resume from checkpoint-STEP and train to 10 steps, recording the batches after it
  MODE ranks     (under torchrun) train 4 steps, predict the validation rows, record shards and predictions
"""
import faulthandler, json, os, sys, warnings
faulthandler.enable()   # a crash prints where it happened
warnings.simplefilter('ignore')
import numpy as np
import torch

out, cache, outdir, mode = sys.argv[1:5]
step = int(sys.argv[5]) if len(sys.argv) > 5 else 0
from transformers import ElectraConfig, ElectraForSequenceClassification, TrainingArguments, TrainerCallback
from bangla_data.pipeline import prepare
from bangla_data.sample import sample_tokenizer
from bangla_data.trainer import BanglaTrainer

args = TrainingArguments(output_dir=outdir, max_steps=10 if mode != 'ranks' else 4, per_device_train_batch_size=64,
                         per_device_eval_batch_size=32, learning_rate=1e-3, report_to=[], use_cpu=True,
                         save_strategy='steps' if mode == 'stop' else 'no', save_steps=max(step, 1),
                         disable_tqdm=True, seed=5, logging_steps=1000, ddp_backend='gloo' if mode == 'ranks' else None,
                         ddp_find_unused_parameters=False)
args.device                                                    # initialises torch.distributed under torchrun
p = prepare(tokenizer=sample_tokenizer(), cache_dir=cache, num_folds=5, verbose=False)
train, val, pw = p.fold(1, batch_size=64, val_batch_size=32, num_workers=0, seed=5, mask_prob=0.15)
torch.manual_seed(0)
cfg = ElectraConfig(vocab_size=len(p.tokenizer), embedding_size=16, hidden_size=32, num_hidden_layers=1,
                    num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                    num_labels=len(p.label_columns))
seen = []

class Recording(BanglaTrainer):
    def compute_loss(self, model, inputs, *a, **k):
        if model.training: seen.append([inputs['index'].tolist(), int(inputs['input_ids'].eq(p.tokenizer.mask_token_id).sum())])
        return super().compute_loss(model, inputs, *a, **k)

class Stop(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        if mode == 'stop' and state.global_step >= step: control.should_training_stop = True

t = Recording(model=ElectraForSequenceClassification(cfg), args=args, train_dataset=train.dataset,
              eval_dataset=val.dataset, train_loader=train, eval_loader=val, pos_weight=pw, callbacks=[Stop()])
t.train(resume_from_checkpoint=os.path.join(outdir, f'checkpoint-{step}') if mode == 'resume' else None)
res = dict(seen=seen, steps_per_epoch=len(train), global_step=t.state.global_step)
if mode == 'ranks':
    import torch.distributed as dist
    pred = t.predict(t.eval_dataset)
    shard = np.concatenate([np.asarray(b) for b in train.batch_sampler.epoch_batches(0)])
    shards = [None, None]
    dist.all_gather_object(shards, train.dataset.indices[shard].tolist())
    res.update(rank=dist.get_rank(), world=dist.get_world_size(), rows=pred.rows.tolist(),
               labels=pred.label_ids.tolist(), truth=p.labels[pred.rows].tolist(), val=p.splits[1][1].tolist(),
               train=p.splits[1][0].tolist(), shards=shards, n_pred=len(pred.predictions))
    out = out.replace('.json', f'.{dist.get_rank()}.json')
with open(out, 'w') as f: json.dump(res, f)
if mode == 'ranks':      # every rank has written its results; then leave without Python's and C++'s teardown:
    dist.barrier()       # even after destroy_process_group() a rank sometimes aborted at exit under pytest
    os._exit(0)          # ("terminate called without an active exception", SIGABRT), failing the run
