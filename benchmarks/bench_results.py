"""Results benchmark (issue 14): tuning per-label thresholds and the per-label report, against the obvious
scikit-learn code measured in the same run on the same predictions.

Data: the real cyberbully labels (12,546 rows x 5 labels, cleaned by `load_and_preprocess_data`) with synthetic
probabilities (labels plus uniform noise, rounded to 3 decimals so there are ties, as with float16 outputs).
Baselines: thresholds by trying every distinct probability with `sklearn.metrics.f1_score` (what a notebook does);
the report by `precision_recall_fscore_support` (average=None, micro, macro, weighted). The results must agree
(checked), and the script prints the best-of-N wall times and their ratios. Also times the held-out test split
(`assign_test_split`, 10%) next to `prepare_kfold_splits` on the same data.

Run:  .venv/bin/python benchmarks/bench_results.py [--shared ../shared] [--write]
(`--write` puts the results in benchmarks/README.md, section "Results", between its begin/end markers.)
"""
import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bangla_data.kfold import assign_test_split, prepare_kfold_splits
from bangla_data.loading import load_and_preprocess_data
from bangla_data.metrics import multilabel_report, prob_column, tune_thresholds

HERE = Path(__file__).resolve().parent
LABELS = ['bully', 'sexual', 'religious', 'threat', 'spam']


def best_time(fn, repeats):
    "Best wall time of `repeats` calls, and the last result."
    best, out = float('inf'), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def sklearn_thresholds(Y, P):
    "Per label, the distinct probability with the best F1 (ties: the highest), by calling f1_score for each."
    from sklearn.metrics import f1_score
    out = []
    for j in range(Y.shape[1]):
        cands = np.unique(P[:, j])[::-1]
        scores = [f1_score(Y[:, j], P[:, j] >= t, zero_division=0) for t in cands]
        k = int(np.argmax(scores)); out.append((cands[k], scores[k]))
    return np.array(out)


def sklearn_report(Y, pred):
    from sklearn.metrics import precision_recall_fscore_support as prfs
    return [prfs(Y, pred, average=a, zero_division=0) for a in (None, 'micro', 'macro', 'weighted')]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--shared', default=os.environ.get('BANGLA_DATA_SHARED', str(HERE.parent.parent / 'shared')))
    ap.add_argument('--write', action='store_true', help='write the results into benchmarks/README.md')
    args = ap.parse_args()
    lines = []
    def say(msg):
        print(msg); lines.append(msg)
    csv = Path(args.shared) / 'data' / 'cyberbully_multilabel' / 'comments.csv'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        comments, labels = load_and_preprocess_data(csv, text_column='comment', label_columns=LABELS, verbose=False)
    Y = labels.astype(int)
    P = np.round(np.clip(0.35 * Y + 0.65 * np.random.default_rng(0).random(Y.shape), 0, 1), 3)
    table = pd.DataFrame({**{c: Y[:, j] for j, c in enumerate(LABELS)},
                          **{prob_column(c): P[:, j] for j, c in enumerate(LABELS)}})
    say(f"{len(Y):,} rows x {len(LABELS)} labels; {len(np.unique(P))} distinct probabilities")
    t_ours, thr = best_time(lambda: tune_thresholds(table), 5)
    t_sk, sk = best_time(lambda: sklearn_thresholds(Y, P), 1)
    assert np.allclose(thr['threshold'], sk[:, 0]) and np.allclose(thr['f1'], sk[:, 1]), (thr, sk)
    say(f"tune_thresholds:   {t_ours * 1e3:8.1f} ms   f1_score per candidate: {t_sk * 1e3:9.1f} ms   "
          f"ratio {t_ours / t_sk:.4f}x   (same thresholds and F1)")
    t_rep, rep = best_time(lambda: multilabel_report(table, thr), 5)
    pred = (P >= thr['threshold'].to_numpy()).astype(int)
    t_skr, skr = best_time(lambda: sklearn_report(Y, pred), 5)
    assert np.allclose(rep['f1'].iloc[:len(LABELS)], skr[0][2])
    for name, s in zip(('micro', 'macro', 'weighted'), skr[1:]):
        assert np.allclose(rep.loc[f'{name} avg', ['precision', 'recall', 'f1']].to_numpy(float), s[:3])
    say(f"multilabel_report: {t_rep * 1e3:8.1f} ms   precision_recall_fscore_support x4: {t_skr * 1e3:6.1f} ms   "
          f"ratio {t_rep / t_skr:.3f}x   (equal values)")
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for st in ('multiclass', 'multilabel'):
            t_test, test = best_time(lambda: assign_test_split(comments, labels, 0.1, st), 3)
            t_k, _ = best_time(lambda: prepare_kfold_splits(comments, labels, 5, st), 3)
            dev = 100 * np.abs(labels[test].mean(0) - labels.mean(0)).max()
            say(f"assign_test_split ({st}, leak-free): {t_test * 1e3:7.1f} ms for {int(test.sum()):,} test rows, "
                  f"label rates within {dev:.2f} points; 5-fold split of the same rows: {t_k * 1e3:7.1f} ms")
    if args.write: write_readme(lines)


BEGIN, END = '<!-- begin: generated by bench_results.py --write -->', '<!-- end: generated by bench_results.py -->'


def write_readme(lines):
    "Replace (or append) this script's block in benchmarks/README.md, atomically."
    readme = HERE / 'README.md'
    text = readme.read_text(encoding='utf-8')
    block = (f"{BEGIN}\nMeasured {time.strftime('%Y-%m-%d')} on this project's 2-core machine by "
             "`.venv/bin/python benchmarks/bench_results.py --write`:\n\n```\n" + "\n".join(lines) + f"\n```\n{END}")
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip('\n') + ("\n\n## Results: thresholds, the per-label report, the test split (issue 14)\n\n"
                                     "Tuning a threshold per label tries every distinct probability at once (sort, "
                                     "cumulative true positives); the baseline calls `f1_score` per candidate. "
                                     "Both must give the same thresholds and F1.\n\n") + block + "\n"
    tmp = readme.with_name(readme.name + '.tmp')
    tmp.write_text(text, encoding='utf-8'); os.replace(tmp, readme)


if __name__ == '__main__':
    main()
