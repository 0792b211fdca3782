"""K-fold split benchmark (issue 5): the design's section-6 code vs `bangla_data.kfold`, same run, same data.

Data: the real cyberbully comments (cleaned by `load_and_preprocess_data`) repeated to 44,000 rows, the design's
dataset size. Reports, for each splitter, the best-of-N wall time, the ratio to the design's code for the same
stratification type, the largest per-fold label-rate deviation (percentage points) and the share of validation
rows whose text is in their training fold. Targets:
  - multiclass, group_duplicates=False: <= 0.05 x the design's multiclass time
  - leak-free (default) multiclass and multilabel: < 3 s each

Run:  .venv/bin/python benchmarks/bench_kfold.py [--rows 44000] [--shared ../shared]
"""
import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import design_kfold  # noqa: E402
from bangla_data.kfold import fold_report, prepare_kfold_splits  # noqa: E402
from bangla_data.loading import load_and_preprocess_data  # noqa: E402

from bench_common import LABELS, best_time  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--rows', type=int, default=44_000)
    ap.add_argument('--shared', default=os.environ.get('BANGLA_DATA_SHARED', str(HERE.parent.parent / 'shared')))
    args = ap.parse_args()
    csv = Path(args.shared) / 'data' / 'cyberbully_multilabel' / 'comments.csv'
    comments, labels = load_and_preprocess_data(csv, text_column='comment', label_columns=LABELS, verbose=False)
    idx = np.arange(args.rows) % len(comments)
    comments = [comments[i] for i in idx]
    labels = labels[idx]
    print(f"{len(comments):,} rows (the {len(set(idx)):,} cleaned cyberbully comments repeated; "
          f"{len(set(comments)):,} distinct texts), 5 folds, seed 42\n")

    distinct = [f"{c} #{i}" for i, c in enumerate(comments)]
    cases = [
        # name, stratification type, callable, repeats
        ('design multiclass', 'multiclass', lambda: list(design_kfold.prepare_kfold_splits(comments, labels, 5, 'multiclass', 42)), 7),
        ('bangla_data multiclass, group_duplicates=False', 'multiclass',
         lambda: prepare_kfold_splits(comments, labels, 5, 'multiclass', 42, group_duplicates=False), 21),
        ('bangla_data multiclass, leak-free (default)', 'multiclass',
         lambda: prepare_kfold_splits(comments, labels, 5, 'multiclass', 42), 5),
        ('design multilabel (iterstrat)', 'multilabel', lambda: list(design_kfold.prepare_kfold_splits(comments, labels, 5, 'multilabel', 42)), 2),
        ('bangla_data multilabel, group_duplicates=False', 'multilabel',
         lambda: prepare_kfold_splits(comments, labels, 5, 'multilabel', 42, group_duplicates=False), 2),
        ('bangla_data multilabel, leak-free (default)', 'multilabel',
         lambda: prepare_kfold_splits(comments, labels, 5, 'multilabel', 42), 5),
        # worst case for the group balancer: every row its own group (no duplicates at all)
        ('bangla_data multiclass, leak-free, 44k distinct texts', 'multiclass',
         lambda: prepare_kfold_splits(distinct, labels, 5, 'multiclass', 42), 2),
        ('bangla_data multilabel, leak-free, 44k distinct texts', 'multilabel',
         lambda: prepare_kfold_splits(distinct, labels, 5, 'multilabel', 42), 2),
    ]
    results, base = {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')          # the design's sklearn warning, our conflict warning
        for name, st, fn, reps in cases:
            fn()                                 # warm-up (imports, caches)
            t, splits = best_time(fn, reps)
            rep = fold_report(splits, labels, LABELS, distinct if 'distinct' in name else comments)
            if name.startswith('design'): base[st] = t
            results[name] = (st, t, rep)

    header = f"| splitter | time (s) | × design | max label-rate dev (pp) | val rows with text in train |"
    print(header); print("|---|---:|---:|---:|---:|")
    # (the "distinct texts" rows: overlap is measured on their own, all-distinct texts)
    for name, (st, t, rep) in results.items():
        pct = 100 * rep.val_in_train / len(comments)
        print(f"| {name} | {t:.4f} | {t / base[st]:.3f} | {rep.max_deviation_pp:.3f} | {pct:.1f}% |")

    t_mc = results['bangla_data multiclass, group_duplicates=False'][1]
    t_free_mc = results['bangla_data multiclass, leak-free (default)'][1]
    t_free_ml = results['bangla_data multilabel, leak-free (default)'][1]
    checks = [
        (f"multiclass group_duplicates=False ≤ 0.05× design: {t_mc / base['multiclass']:.3f}×", t_mc <= 0.05 * base['multiclass']),
        (f"leak-free multiclass < 3 s: {t_free_mc:.3f} s", t_free_mc < 3),
        (f"leak-free multilabel < 3 s: {t_free_ml:.3f} s", t_free_ml < 3),
    ]
    print("\nTargets:")
    for text, ok in checks: print(f"  {'MET    ' if ok else 'NOT MET'} {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == '__main__':
    sys.exit(main())
