"""Run by `tests/test_views.py` under `torchrun --nproc_per_node=2` (gloo, CPU); not a test module itself.

Each rank loads the real comments, tokenizes them with BanglaBERT (teacher) and mBERT cased (student) through the
shared cache, builds views loaders with distributed auto-detection, runs two training epochs and one validation pass,
checks every batch (each view's ids are its tokenizer's own encoding of the batch's rows, right padding only), and
rank 0 writes what the test checks to `out_json`.
"""
import json, sys
from pathlib import Path
import numpy as np
import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import real_views, digest

MAX_LENGTH = {"teacher": 128, "student": 64}


def main(out_json: str, cache_dir: str, rows: int):
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    from bangla_data.loaders import create_data_loaders
    comments, labels, train_idx, val_idx, toks, views = real_views(rows, cache_dir, MAX_LENGTH)
    expected = {v: t(comments, truncation=True, max_length=MAX_LENGTH[v])["input_ids"] for v, t in toks.items()}
    train_loader, val_loader = create_data_loaders(views, train_idx, val_idx, batch_size=32, num_workers=0, seed=7)

    mine = {"rank": rank, "world": world, "data": digest(*(a for td in views.values() for a in (td.ids, td.offsets))),
            "fold": digest(train_idx, val_idx), "len_train_loader": len(train_loader), "epochs": [], "n_batches": [],
            "padding": [], "checked": 0, "mismatches": 0, "mismatch_examples": []}

    def check(b):
        for v, td in views.items():
            ids, mask = b[v]["input_ids"], b[v]["attention_mask"]
            lens = mask.sum(1)
            ok = (torch.equal(mask, (torch.arange(mask.shape[1])[None] < lens[:, None]).long())
                  and bool((ids[mask == 0] == td.pad_token_id).all()))
            got = ids.tolist()
            for i, r in enumerate(b["index"].tolist()):
                mine["checked"] += 1
                if not ok or got[i][:int(lens[i])] != expected[v][r]:
                    mine["mismatches"] += 1
                    if len(mine["mismatch_examples"]) < 3: mine["mismatch_examples"].append([v, r])

    for epoch in range(2):
        train_loader.batch_sampler.set_epoch(epoch)
        batches = list(train_loader)
        for b in batches: check(b)
        mine["epochs"].append(torch.cat([b["index"] for b in batches]).tolist())
        mine["n_batches"].append(len(batches))
        mine["padding"].append({v: 1 - sum(int(b[v]["attention_mask"].sum()) for b in batches)
                                / sum(b[v]["attention_mask"].numel() for b in batches) for v in views})
    val = list(val_loader)
    for b in val: check(b)
    mine["val"] = torch.cat([b["index"] for b in val]).tolist()
    everyone = [None] * world
    dist.all_gather_object(everyone, mine)
    if rank == 0:
        Path(out_json).write_text(json.dumps({"ranks": everyone, "train_idx": np.asarray(train_idx).tolist(),
                                              "val_idx": np.asarray(val_idx).tolist()}))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
