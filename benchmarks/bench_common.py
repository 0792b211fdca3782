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


def write_section(readme, begin, end, cmd, body, heading, intro):
    """Put `body` (measured by `cmd`) between the `begin`/`end` markers of `readme`, dated; if the markers are not
    there yet, append a new section: `heading`, the `intro` paragraph, the command, the block."""
    import datetime, re, textwrap
    block = (f"{begin}\nMeasured {datetime.date.today().isoformat()} on this project's 2-core machine by "
             f"`{cmd}`:\n\n{body}{end}")
    s = readme.read_text(encoding="utf-8")
    if begin in s and end in s:
        s = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda m: block, s, flags=re.S)
    else:
        s = (s.rstrip("\n") + f"\n\n## {heading}\n\n" + textwrap.fill(intro, 118, break_on_hyphens=False)
             + f"\n\n```\n{cmd}\n```\n\n" + block + "\n")
    readme.write_text(s, encoding="utf-8")
    print(f"wrote {readme}")


def touch_epoch(loader):
    """One epoch over `loader`, touching each batch's tensors (no model): `(batches, rows, tokens fed, real tokens,
    time of the first batch)`; both sides of bench_first_batch.py count the same way."""
    batches = rows = fed = real = 0
    t_first = None
    for b in loader:
        input_ids, attention_mask, y = b["input_ids"], b["attention_mask"], b["labels"]
        fed += input_ids.numel(); real += int(attention_mask.sum()); rows += int(y.shape[0])
        batches += 1
        if t_first is None: t_first = time.perf_counter()
    return batches, rows, fed, real, t_first
