"""Run by `tests/test_loaders.py` under `torchrun --nproc_per_node=2` (gloo, CPU); not a test module itself.

Each rank loads the real comments, builds (or waits for) the tokenization cache in the shared `cache_dir`,
computes the first fold on its own, builds the loaders with distributed auto-detection, runs two training epochs
and one validation pass, and rank 0 writes everything the test checks to `out_json`.
"""
import contextlib, hashlib, io, json, sys, time, warnings
from pathlib import Path
import numpy as np
import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import BANGLABERT_DIR, cyberbully_rows, digest


def main(out_json: str, cache_dir: str, rows: int):
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    from transformers import AutoTokenizer
    from bangla_data.cache import get_or_create_tokenized_dataset
    from bangla_data.kfold import prepare_kfold_splits
    from bangla_data.loaders import create_data_loaders

    comments, labels = cyberbully_rows(rows)
    tok = AutoTokenizer.from_pretrained(str(BANGLABERT_DIR))
    t0 = time.perf_counter()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        data = get_or_create_tokenized_dataset(comments, labels, tok, 128, cache_dir)
    build_s = time.perf_counter() - t0
    train_idx, val_idx = prepare_kfold_splits(comments, labels, num_folds=5, seed=42)[0]
    train_loader, val_loader = create_data_loaders(data, train_idx, val_idx, batch_size=32, num_workers=0, seed=7)

    mine = {"rank": rank, "world": world, "build_s": build_s, "cache_log": out.getvalue(), "data": digest(data.ids, data.offsets, data.labels),
            "fold": digest(train_idx, val_idx), "n_train": len(train_idx), "n_val": len(val_idx),
            "len_train_loader": len(train_loader), "epochs": [], "val": [], "widths": []}
    for epoch in range(2):
        train_loader.batch_sampler.set_epoch(epoch)
        batches = list(train_loader)
        mine["epochs"].append(torch.cat([b["index"] for b in batches]).tolist())
        mine["widths"].append([int(b["input_ids"].shape[1]) for b in batches])
        mine.setdefault("n_batches", []).append(len(batches))
    mine["val"] = torch.cat([b["index"] for b in val_loader]).tolist()
    everyone = [None] * world
    dist.all_gather_object(everyone, mine)
    if rank == 0:
        Path(out_json).write_text(json.dumps({"ranks": everyone, "train_idx": np.asarray(train_idx).tolist(),
                                              "val_idx": np.asarray(val_idx).tolist(),
                                              "cache_files": sorted(str(p.relative_to(cache_dir)) for p in Path(cache_dir).rglob("*") if p.is_file())}))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
