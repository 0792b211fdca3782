"""What the benchmark scripts share: the label columns of the real data, best-of-n timing, and the real comments
repeated to a benchmark's size."""
import time, warnings
import numpy as np

LABELS = ['bully', 'sexual', 'religious', 'threat', 'spam']


def best_time(fn, repeats):
    "Best wall time of `repeats` calls, and the last result."
    best, out = float('inf'), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def load_repeated(csv, rows):
    "The cleaned comments and labels of the cyberbully CSV, repeated (or cut) to `rows` rows."
    from bangla_data.loading import load_and_preprocess_data
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        comments, labels = load_and_preprocess_data(csv, text_column='comment', label_columns=LABELS, verbose=False)
    rep = np.resize(np.arange(len(comments)), rows)
    return [comments[i] for i in rep], labels[rep]
