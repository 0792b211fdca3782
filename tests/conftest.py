"""Shared fixtures for the integration tests: the real data and tokenizers in `../shared`.

Tests that read them carry the `shared` marker; the docs tests carry `docs` (see `pytest.ini`). Without `../shared`
(a plain clone) the `shared` tests are skipped and the run says in one line what is missing and how to get it
(`python tools/fetch_test_data.py`). Under `CI=true` nothing of this may be skipped: missing files stop the run at
collection, and a skipped `shared` or `docs` test is reported as failed.
"""
import importlib.util
import os, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("fetch_test_data", ROOT / "tools" / "fetch_test_data.py")
fetch_test_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fetch_test_data)

SHARED = fetch_test_data.default_dest()
CYBERBULLY_CSV = SHARED / "data" / "cyberbully_multilabel" / "comments.csv"
TOXIC_CSV = SHARED / "data" / "toxic_multilabel" / "comments.csv"
CYBERBULLY_LABELS = ["bully", "sexual", "religious", "threat", "spam"]
TOXIC_LABELS = ["vulgar", "hate", "religious", "threat", "troll", "Insult"]
BANGLABERT_DIR = SHARED / "tokenizers" / "banglabert"
MBERT_DIR = SHARED / "tokenizers" / "mbert-cased"


IN_CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")
MUST_RUN_IN_CI = ("shared", "docs")          # markers of tests that CI may not skip
SHARED_FIXTURES = {"banglabert", "mbert", "cyberbully", "toxic"}   # a test using one of these is marked `shared`
_must_run = pytest.StashKey[set]()
_skipped = pytest.StashKey[dict]()          # skip reason -> count, for the tests marked MUST_RUN_IN_CI


def _missing_shared():
    "What of ../shared the `shared` tests lack, in words ('' if nothing)."
    if not SHARED.is_dir(): return f"{SHARED} does not exist"
    missing = fetch_test_data.missing_files(SHARED)
    return f"{SHARED} lacks {', '.join(missing)}" if missing else ""


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SHARED_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("shared"):
            item.add_marker("shared")
    config.stash[_must_run] = {i.nodeid for i in items if any(i.get_closest_marker(m) for m in MUST_RUN_IN_CI)}
    config.stash[_skipped] = {}
    needing = [i for i in items if i.get_closest_marker("shared")]
    missing = _missing_shared() if needing else ""
    if not missing: return
    if IN_CI:
        raise pytest.UsageError(f"CI=true: {len(needing)} tests need the real data and tokenizers, but {missing}; "
                                f"{fetch_test_data.FETCH_HINT}")
    skip = pytest.mark.skip(reason=f"need the real data and tokenizers, but {missing}: {fetch_test_data.FETCH_HINT}")
    for item in needing: item.add_marker(skip)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    "Under CI=true a skipped `shared` or `docs` test is a failure."
    rep = yield
    if rep.skipped and not hasattr(rep, "wasxfail") and item.nodeid in item.config.stash.get(_must_run, ()):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        if reason.startswith("Skipped: "): reason = reason[len("Skipped: "):]
        if IN_CI:
            rep.outcome, rep.longrepr = "failed", f"CI=true: this test may not be skipped, but it was: {reason}"
        else:
            counts = item.config.stash[_skipped]
            counts[reason] = counts.get(reason, 0) + 1
    return rep


def pytest_terminal_summary(terminalreporter, config):
    "One line per reason the `shared`/`docs` tests were skipped, saying what is missing and how to get it."
    for reason, n in config.stash.get(_skipped, {}).items():
        terminalreporter.write_line(f"SKIPPED {n} test{'s' * (n != 1)}: {reason}", yellow=True, bold=True)


@pytest.fixture(scope="session")
def banglabert():
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(BANGLABERT_DIR))


@pytest.fixture(scope="session")
def mbert():
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(MBERT_DIR))


def load_real(path, text_column, label_columns):
    "Load a real dataset quietly (no printed summary, no warnings): `(comments, labels)`."
    import warnings
    from bangla_data.loading import load_and_preprocess_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_and_preprocess_data(path, text_column=text_column, label_columns=label_columns, verbose=False)


@pytest.fixture(scope="session")
def cyberbully():
    "The cleaned cyberbullying comments and labels."
    return load_real(CYBERBULLY_CSV, "comment", CYBERBULLY_LABELS)


@pytest.fixture(scope="session")
def toxic():
    "The cleaned toxic-comment texts and labels."
    return load_real(TOXIC_CSV, "text", TOXIC_LABELS)


TORCHRUN_2 = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2"]
"The command that starts a script on two ranks (gloo, CPU) in the tests."


def digest(*arrays) -> str:
    "A hash of arrays' bytes, to compare what two ranks (or two runs) hold."
    import hashlib
    import numpy as np
    h = hashlib.sha256()
    for a in arrays: h.update(np.ascontiguousarray(np.asarray(a)).tobytes())
    return h.hexdigest()


def cyberbully_rows(rows: int):
    "The first `rows` cleaned cyberbullying comments and their labels, loaded quietly."
    comments, labels = load_real(CYBERBULLY_CSV, "comment", CYBERBULLY_LABELS)
    return comments[:rows], labels[:rows]


def real_views(rows: int, cache_dir, max_length: dict) -> tuple:
    ("`(comments, labels, train_idx, val_idx, tokenizers, views)`: the first `rows` cyberbullying comments, fold 0 of 5 "
     "(seed 42), BanglaBERT ('teacher') and mBERT cased ('student'), each view through the cache at `cache_dir` with "
     "its `max_length[view]` (what the torchrun scripts of the views and the alignment start from).")
    import contextlib, io, warnings
    from transformers import AutoTokenizer
    from bangla_data.cache import get_or_create_tokenized_dataset
    from bangla_data.kfold import prepare_kfold_splits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comments, labels = cyberbully_rows(rows)
        train_idx, val_idx = prepare_kfold_splits(comments, labels, num_folds=5, seed=42)[0]
    toks = {"teacher": AutoTokenizer.from_pretrained(str(BANGLABERT_DIR)),
            "student": AutoTokenizer.from_pretrained(str(MBERT_DIR))}
    with contextlib.redirect_stdout(io.StringIO()):
        views = {v: get_or_create_tokenized_dataset(comments, labels, t, max_length[v], cache_dir)
                 for v, t in toks.items()}
    return comments, labels, train_idx, val_idx, toks, views


def torchrun_ranks(script, tmp_path, rows: int) -> dict:
    "Run a ddp_*_script.py on two ranks over `rows` real comments (shared cache in `tmp_path`); its JSON result."
    import json, subprocess
    out, cache = tmp_path / "ranks.json", tmp_path / "cache"
    cache.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run(TORCHRUN_2 + [str(script), str(out), str(cache), str(rows)], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(out.read_text())
