"""Benchmark: the complete data flow at 44,000, 200,000 and 1,000,000 rows — time and peak memory (issue 7, "Load").

The real cyberbullying comments (`../shared/data/cyberbully_multilabel/comments.csv`, 12,546 rows) are repeated to
N rows and written as a CSV in a temporary directory. Each size runs in a fresh process, twice: cold (empty cache
directory) and warm (the same cache directory again: a cache hit). The flow is `bangla_data.pipeline.prepare`
(load + clean, the [UNK] report, BanglaBERT tokenization through the cache, token-length report, leak-free stratified
5-fold split, fold report) followed by `Prepared.fold(0)` (class weights and loaders) and one epoch over the training
and validation loaders of fold 0 (`num_workers=0`, batch 32).

Measured per run: the process's wall time (including starting Python and importing torch/transformers, ≈3–8 s
here) and the flow's (everything after the imports), the time of every stage, and the process's peak RSS (`ru_maxrss`, which includes everything
the Rust tokenizer allocates). The 44,000-row run is the baseline of the same run: the table prints flow time per row and
peak memory relative to it, so "grows linearly or better" reads as a per-row ratio ≤ 1.

    python benchmarks/bench_scale.py [--rows 44000 200000 1000000] [--tokenizer DIR] [--distinct] [--keep DIR]

`--distinct` makes every comment distinct (a numbered suffix): the worst case for tokenization and grouping.
"""
import argparse, csv, json, os, resource, subprocess, sys, tempfile, time, warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = Path(os.environ.get("BANGLA_DATA_SHARED", ROOT.parent / "shared"))
CSV = SHARED / "data" / "cyberbully_multilabel" / "comments.csv"
LABELS = ["bully", "sexual", "religious", "threat", "spam"]


def write_repeated(src: Path, dst: Path, rows: int, distinct: bool) -> int:
    "Write the first `rows` rows of `src` repeated, as CSV; returns the file size in bytes."
    with open(src, encoding="utf-8-sig", newline="") as f:
        r = csv.reader(f)
        header = next(r)
        data = list(r)
    ti = header.index("comment")
    with open(dst, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i in range(rows):
            row = data[i % len(data)]
            if distinct:
                row = list(row); row[ti] = f"{row[ti]} {i}"
            w.writerow(row)
    return dst.stat().st_size


def child(args):
    "One run of the complete flow in this process; prints one JSON line."
    t0 = time.perf_counter()
    warnings.simplefilter("ignore")
    from bangla_data.pipeline import prepare
    t_import = time.perf_counter() - t0
    t = time.perf_counter()
    p = prepare(args.csv, tokenizer=args.tokenizer, text_column="comment", label_columns=LABELS, max_length=128, num_folds=5,
                cache_dir=args.cache, seed=42, verbose=False)
    t_prepare = time.perf_counter() - t
    t = time.perf_counter()
    train, val, pos_weight = p.fold(0, batch_size=32, num_workers=0)
    t_fold = time.perf_counter() - t
    t = time.perf_counter()
    seen = tokens = 0
    for loader in (train, val):
        for b in loader:
            seen += len(b["labels"]); tokens += b["input_ids"].numel()
    t_epoch = time.perf_counter() - t
    assert seen == len(p.comments), (seen, len(p.comments))
    out = dict(rows=len(p.comments), rows_read=p.load_info.rows_read, import_s=t_import, prepare_s=t_prepare, fold_s=t_fold,
               epoch_s=t_epoch, flow_s=t_prepare + t_fold + t_epoch, total_s=time.perf_counter() - t0, tokens_fed=tokens, cache=p.cache.get("status"),
               cache_bytes=p.cache.get("bytes"), peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               **{f"{k}_s": v for k, v in p.timings.items()})
    print("RESULT " + json.dumps(out), flush=True)


def run(csv_path, cache, tokenizer):
    t = time.perf_counter()
    r = subprocess.run([sys.executable, __file__, "--child", "--csv", str(csv_path), "--cache", str(cache), "--tokenizer", str(tokenizer)],
                       capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    if r.returncode:
        sys.exit(f"child failed ({r.returncode}):\n{r.stderr[-4000:]}")
    res = json.loads(next(l for l in r.stdout.splitlines() if l.startswith("RESULT "))[7:])
    res["wall_s"] = wall
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[44_000, 200_000, 1_000_000])
    ap.add_argument("--tokenizer", default=str(SHARED / "tokenizers" / "banglabert"))
    ap.add_argument("--distinct", action="store_true")
    ap.add_argument("--keep", help="directory for the CSVs and caches (default: a temporary one, removed)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--csv", help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child: return child(args)

    tmp = tempfile.TemporaryDirectory(prefix="bench_scale_") if not args.keep else None
    work = Path(args.keep or tmp.name); work.mkdir(parents=True, exist_ok=True)
    results = []
    for n in args.rows:
        path = work / f"comments_{n}{'_distinct' if args.distinct else ''}.csv"
        size = write_repeated(CSV, path, n, args.distinct)
        cache = work / f"cache_{n}"
        cold = run(path, cache, args.tokenizer)
        warm = run(path, cache, args.tokenizer)
        results.append((n, size, cold, warm))
        print(f"{n:>9,} rows: cold {cold['wall_s']:.1f} s / {cold['peak_rss_mb']:,.0f} MB, warm {warm['wall_s']:.1f} s / "
              f"{warm['peak_rss_mb']:,.0f} MB", flush=True)
        path.unlink()

    base_n, _, base_cold, base_warm = results[0]
    print(f"\nComplete flow, {'distinct' if args.distinct else 'repeated'} real comments, BanglaBERT, max_length=128, 5 folds, "
          f"one epoch of fold 0 (batch 32, 0 workers); baseline = the {base_n:,}-row run\n")
    print("| rows | CSV MB | run | process s | flow s | load s | [UNK] report s | tokenize s | folds s | reports s | fold(0) s | epoch s "
          "| peak RSS MB | time/row × baseline | peak RSS × baseline |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, size, cold, warm in results:
        for name, r, b in (("cold", cold, base_cold), ("warm", warm, base_warm)):
            stages = ("load_s", "tokenizer_s", "unk_report_s", "tokenize_s", "folds_s")
            other = r["prepare_s"] - sum(r.get(k, 0) for k in stages)    # token-length and fold reports
            print(f"| {n:,} | {size / 1e6:.0f} | {name} ({r['cache']}) | {r['wall_s']:.1f} | {r['flow_s']:.1f} | {r.get('load_s', 0):.1f} | "
                  f"{r.get('unk_report_s', 0):.1f} | {r.get('tokenize_s', 0):.2f} | {r.get('folds_s', 0):.1f} | {other:.1f} | "
                  f"{r['fold_s']:.2f} | {r['epoch_s']:.1f} | "
                  f"{r['peak_rss_mb']:,.0f} | {(r['flow_s'] / n) / (b['flow_s'] / base_n):.2f} | {r['peak_rss_mb'] / b['peak_rss_mb']:.2f} |")
    top = results[-1]
    peak = max(top[2]["peak_rss_mb"], top[3]["peak_rss_mb"])
    print(f"\nPeak RSS at {top[0]:,} rows: {peak:,.0f} MB — target < 4,096 MB: {'met' if peak < 4096 else 'MISSED'}")
    if tmp: tmp.cleanup()


if __name__ == "__main__":
    main()
