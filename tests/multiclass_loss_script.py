"""Run by tests/test_multiclass_e2e.py under `torchrun --nproc_per_node=2` (gloo, CPU); not a test module itself.

usage: multiclass_loss_script.py OUT.json CATEGORICAL_CSV CACHE_DIR OUTPUT_DIR

Each rank prepares the categorical CSV (task='multiclass') through the (warm) shared cache, trains a tiny ELECTRA on
fold 1 on its own shard, then evaluates and predicts fold 1's validation rows at several eval batch sizes; each rank
writes the reported losses, and rank 0 also the predictions and the fold's class weights.
"""
import faulthandler, json, os, sys, warnings
from pathlib import Path
faulthandler.enable()
warnings.simplefilter('ignore')
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import BANGLABERT_DIR  # noqa: E402

FOLD, EVAL_BATCH_SIZES = 1, (100, 128, 1000)


def main(out, csv, cache, outdir):
    from transformers import AutoTokenizer, ElectraConfig, ElectraForSequenceClassification, TrainingArguments
    import torch.distributed as dist
    from bangla_data.dataset import IndexedDataset
    from bangla_data.pipeline import prepare
    args = TrainingArguments(output_dir=outdir, max_steps=4, per_device_train_batch_size=64,
                             per_device_eval_batch_size=EVAL_BATCH_SIZES[0], learning_rate=2e-3, report_to=[],
                             use_cpu=True, save_strategy='no', disable_tqdm=True, seed=5, ddp_backend='gloo',
                             ddp_find_unused_parameters=False)
    args.device                                                # initialises torch.distributed under torchrun
    p = prepare(csv, tokenizer=AutoTokenizer.from_pretrained(str(BANGLABERT_DIR)), label_columns='label',
                task='multiclass', text_column='text', cache_dir=cache, num_folds=5, test_size=0.1, max_length=64,
                verbose=False, report_unk=False)
    torch.manual_seed(0)
    cfg = ElectraConfig(vocab_size=len(p.tokenizer), embedding_size=16, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                        num_labels=len(p.classes))
    t = p.trainer(FOLD, ElectraForSequenceClassification(cfg), args)
    t.train()
    res = dict(rank=dist.get_rank(), world=dist.get_world_size(), n_val=len(t.eval_dataset), eval_loss={},
               test_loss={})
    for bs in EVAL_BATCH_SIZES:
        t.args.per_device_eval_batch_size = bs
        ds = t.eval_dataset if bs == EVAL_BATCH_SIZES[0] else IndexedDataset(
            t.eval_dataset.source, t.eval_dataset.indices, training=False, task='multiclass')
        ev, pred = t.evaluate(ds), t.predict(t.eval_dataset)
        res['eval_loss'][bs], res['test_loss'][bs] = ev['eval_loss'], pred.metrics['test_loss']
    if res['rank'] == 0:
        res.update(rows=pred.rows.tolist(), logits=pred.predictions.tolist(), labels=pred.label_ids.tolist(),
                   val=p.splits[FOLD][1].tolist(), class_weights=t.class_weights.tolist())
    with open(out.replace('.json', f'.{res["rank"]}.json'), 'w') as f: json.dump(res, f)
    dist.barrier()       # every rank has written its results; leave without the teardown that sometimes aborts
    os._exit(0)          # a gloo rank at exit (see tests/trainer_script.py)


if __name__ == '__main__':
    main(*sys.argv[1:5])
