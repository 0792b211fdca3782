"""Benchmark: the design's DataLoaders (sections 5 and 8) versus bangla_data's, same run, same data.

Default data: the real cyberbullying comments (`../shared/data/cyberbully_multilabel/comments.csv`, cleaned with
`load_and_preprocess_data`) repeated to 44,000 rows, BanglaBERT's tokenizer, `max_length=128`, batch 32, one epoch of
the training loader of the first of 5 folds (scikit-learn `KFold(5, shuffle=True, random_state=42)`: 35,200 rows).

Measured per loader: tokens fed to the model (sum over batches of batch size × padded length), the share of them
that is padding, and the time to iterate one epoch with `num_workers=0` and `2` (best of `--repeats` fresh loaders;
with workers, the first epoch includes starting them and the second shows persistent workers).

    python benchmarks/bench_loaders.py [--rows 44000] [--tokenizer DIR] [--max-length 128] [--batch-size 32]
"""
import argparse, contextlib, io, os, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
ROOT = HERE.parent
SHARED = Path(os.environ.get("BANGLA_DATA_SHARED", ROOT.parent / "shared"))
from bench_common import LABELS, load_repeated as load  # noqa: E402

import design_loaders as design
from design_cache import get_or_create_tokenized_dataset as design_tokenize
from bangla_data.loading import load_and_preprocess_data
from bangla_data.cache import get_or_create_tokenized_dataset
from bangla_data.loaders import create_data_loaders


def epoch(loader):
    "Iterate one epoch: (seconds, tokens fed, padded widths)."
    t0, tokens, widths = time.perf_counter(), 0, []
    for b in loader:
        B, T = b["input_ids"].shape
        tokens += B * T; widths.append(T)
    return time.perf_counter() - t0, tokens, widths


def measure(configs, workers, repeats):
    "Best-of-`repeats` epoch times of fresh loaders, the configurations interleaved so that changing load hits all alike."
    times = {k: {nw: ([], []) for nw in workers} for k in configs}
    fed = {}
    for nw in workers:
        for _ in range(repeats if nw == 0 else max(1, repeats - 2)):
            for k, make in configs.items():
                loader = make(nw)
                s, tokens, widths = epoch(loader)
                times[k][nw][0].append(s)
                if nw: times[k][nw][1].append(epoch(loader)[0])
                fed[k] = (tokens, widths)
                del loader
    return {k: (*fed[k], {nw: (min(a), min(b) if b else None) for nw, (a, b) in times[k].items()}) for k in configs}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--csv", default=str(SHARED / "data" / "cyberbully_multilabel" / "comments.csv"))
    p.add_argument("--rows", type=int, default=44_000)
    p.add_argument("--tokenizer", default=str(SHARED / "tokenizers" / "banglabert"))
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*pin_memory.*")   # the design pins memory on a CPU-only machine

    from transformers import AutoTokenizer
    from sklearn.model_selection import KFold
    tok = AutoTokenizer.from_pretrained(a.tokenizer)
    comments, labels = load(a.csv, a.rows)
    train_idx, val_idx = next(KFold(5, shuffle=True, random_state=42).split(np.arange(len(comments))))
    print(f"{len(comments):,} comments, {len(train_idx):,} training rows, tokenizer {Path(a.tokenizer).name}, "
          f"max_length {a.max_length}, batch {a.batch_size}, torch {torch.__version__}, {os.cpu_count()} CPUs")

    with tempfile.TemporaryDirectory() as cache, contextlib.redirect_stdout(io.StringIO()):
        dd = design_tokenize(comments, labels, tok, a.max_length, os.path.join(cache, "design"))   # the design's dict
    with tempfile.TemporaryDirectory() as cache:
        td = get_or_create_tokenized_dataset(comments, labels, tok, a.max_length, cache, verbose=False)
        real = int(td.lengths[train_idx].sum())
        assert real == int(dd["attention_mask"][torch.from_numpy(train_idx)].sum()), "design and bangla_data tokenized differently"

        torch.manual_seed(0)
        bs = a.batch_size
        configs = {
            "design (max_length)": lambda nw: design.create_data_loaders(dd, train_idx, val_idx, bs, nw)[0],
            "bangla_data, padding='max_length'": lambda nw: create_data_loaders(td, train_idx, val_idx, bs, nw, padding="max_length", group_by_length=False)[0],
            "bangla_data, random + dynamic": lambda nw: create_data_loaders(td, train_idx, val_idx, bs, nw, group_by_length=False)[0],
            "bangla_data, length-grouped": lambda nw: create_data_loaders(td, train_idx, val_idx, bs, nw)[0],
        }
        res = measure(configs, a.workers, a.repeats)

    base_tokens, _, base_t = res["design (max_length)"]
    cols = [f"epoch s, {nw} workers" for nw in a.workers] + [f"2nd epoch s, {nw} workers" for nw in a.workers if nw]
    print(f"\nreal tokens in the epoch: {real:,} (mean length {real / len(train_idx):.1f})\n")
    print("| loader | tokens fed | × design | padding | mean batch length | " + " | ".join(cols) + " |")
    print("|---|---:|---:|---:|---:|" + "---:|" * len(cols))
    for k, (tokens, widths, tm) in res.items():
        cells = [f"{tm[nw][0]:.3f} ({tm[nw][0] / base_t[nw][0]:.2f}×)" for nw in a.workers]
        cells += [f"{tm[nw][1]:.3f} ({tm[nw][1] / base_t[nw][1]:.2f}×)" for nw in a.workers if nw]
        print(f"| {k} | {tokens:,} | {tokens / base_tokens:.3f} | {1 - real / tokens:.1%} | {np.mean(widths):.1f} | " + " | ".join(cells) + " |")

    # What any loader that forms random batches of this size and pads each to its longest row feeds, on average:
    # 200 random permutations of the epoch's rows, batched in order (the last batch may be smaller).
    lens, bs = td.lengths[train_idx], a.batch_size
    perms = np.random.default_rng(0).permuted(np.tile(lens, (200, 1)), axis=1)
    fed = np.array([sum(len(c) * c.max() for c in np.array_split(p, range(bs, len(p), bs))) for p in perms])
    fed_any = fed.mean()
    print(f"\nany random batching with dynamic padding (200 random epochs): mean {fed_any:,.0f} tokens = "
          f"{fed_any / base_tokens:.3f}× design (lowest epoch {fed.min() / base_tokens:.3f}×, highest {fed.max() / base_tokens:.3f}×; "
          f"mean longest row per batch {fed_any / len(lens):.1f} tokens)")

    g, r = res["bangla_data, length-grouped"], res["bangla_data, random + dynamic"]
    checks = [("length-grouped tokens ≤ 0.125× design", g[0] / base_tokens, 0.125),
              ("random + dynamic tokens ≤ 0.35× design", r[0] / base_tokens, 0.35)]
    if 0 in a.workers:
        checks += [(f"{k.split(', ')[1]} epoch time, 0 workers ≤ 0.2× design", v[2][0][0] / base_t[0][0], 0.2)
                   for k, v in res.items() if k in ("bangla_data, random + dynamic", "bangla_data, length-grouped")]
    print()
    for name, ratio, target in checks: print(f"{'MET ' if ratio <= target else 'MISSED'} {name}: {ratio:.3f}")


if __name__ == "__main__":
    main()
