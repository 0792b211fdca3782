"""Run by `tests/test_align.py` under `torchrun --nproc_per_node=2` (gloo, CPU); not a test module itself.

Each rank loads the real comments, tokenizes them with BanglaBERT (teacher) and mBERT cased (student) with their
character spans (through the shared cache), builds views loaders with
`align=('student', 'teacher')` and distributed auto-detection, runs one training epoch with 2 workers, checks every
batch's alignment against the character overlap from each tokenizer's own offsets, and rank 0 writes what the test
checks to `out_json`.
"""
import json, sys
from pathlib import Path
import numpy as np
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import real_views
from test_align import ALIGN, MAX_LENGTH, offsets, reference_align


def main(out_json: str, cache_dir: str, rows: int):
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    from bangla_data.loaders import create_data_loaders
    comments, labels, train_idx, val_idx, toks, views = real_views(rows, cache_dir, MAX_LENGTH)
    offs = {v: offsets(t, comments, MAX_LENGTH[v]) for v, t in toks.items()}
    train = create_data_loaders(views, train_idx, val_idx, batch_size=32, num_workers=2, seed=7, align=ALIGN)[0]
    mine = {"rank": rank, "world": world, "rows": [], "checked": 0, "mismatches": 0, "mismatch_examples": [],
            "row_sums_off": 0, "padding_nonzero": 0}
    for b in train:
        A, M = b["align"].numpy(), b["align_mask"].numpy()
        ls, lt = (b[v]["attention_mask"].sum(1).numpy() for v in ALIGN)
        for i, r in enumerate(b["index"].tolist()):
            ref, real_rows = reference_align(offs["student"][r], offs["teacher"][r])
            mine["checked"] += 1
            ok = ref.shape == (ls[i], lt[i]) and np.allclose(A[i, :ls[i], :lt[i]], ref, atol=1e-6) and \
                np.array_equal(M[i, :ls[i]], real_rows)
            if not ok:
                mine["mismatches"] += 1
                if len(mine["mismatch_examples"]) < 3: mine["mismatch_examples"].append(r)
            mine["row_sums_off"] += int((np.abs(A[i].sum(1)[M[i]] - 1) > 1e-5).sum())
            mine["padding_nonzero"] += int(A[i, ls[i]:].any() or A[i, :, lt[i]:].any())
        mine["rows"] += b["index"].tolist()
    everyone = [None] * world
    dist.all_gather_object(everyone, mine)
    if rank == 0:
        Path(out_json).write_text(json.dumps({"ranks": everyone, "train_idx": np.asarray(train_idx).tolist()}))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
