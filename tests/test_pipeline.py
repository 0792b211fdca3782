"""The complete flow (issue 6) on the real data: `prepare` and the `bangla-data prepare` command."""
import json, os, subprocess, sys, time
import numpy as np
import pytest

from bangla_data import BanglaDataError, prepare, calculate_class_weights
from bangla_data.tokenizer import load_tokenizer
from conftest import BANGLABERT_DIR, CYBERBULLY_CSV, CYBERBULLY_LABELS, ROOT

CLI = [sys.executable, "-c", "import sys; from bangla_data.cli import main; sys.exit(main())"]
SECTIONS = ["Loaded 12,546 rows", "Label distribution", "[UNK]", "Token lengths", "Tokenization cache:", "Folds", "Class weights"]


def _cli(*args, cache):
    env = dict(os.environ, BANGLA_DATA_CACHE=str(cache), HF_HUB_OFFLINE="1")
    return subprocess.run(CLI + list(args), capture_output=True, text=True, env=env, cwd=ROOT)


@pytest.mark.shared
def test_cli_prepare_real_data_twice(tmp_path):
    args = ["prepare", str(CYBERBULLY_CSV), "--text-column", "comment", "--tokenizer", str(BANGLABERT_DIR)]
    first = _cli(*args, cache=tmp_path)
    assert first.returncode == 0, first.stderr
    pos = [first.stdout.find(s) for s in SECTIONS]
    assert all(p >= 0 for p in pos), [s for s, p in zip(SECTIONS, pos) if p < 0]
    assert pos == sorted(pos), "sections out of order"
    assert "Tokenization cache: miss" in first.stdout
    assert "0 validation rows (0.0%) have their text in the training fold" in first.stdout
    second = _cli(*args, "--json", cache=tmp_path)
    assert second.returncode == 0, second.stderr
    doc = json.loads(second.stdout)
    assert doc["cache"]["status"] == "hit"
    assert doc["load"]["rows_read"] == 12546 and doc["folds"]["val_in_train"] == 0
    assert doc["unk"]["clean"] < 0.002 < 0.03 < doc["unk"]["raw"]
    ls = _cli("cache", "ls", cache=tmp_path)
    assert ls.returncode == 0 and "1 entry" in ls.stdout and "12546" in ls.stdout


@pytest.mark.shared
def test_cli_user_errors_no_traceback(tmp_path):
    for args, msg in [(["prepare", str(CYBERBULLY_CSV)], "Did you mean 'comment'?"),
                      (["prepare", str(tmp_path / "missing.csv")], "no such file"),
                      (["prepare", str(CYBERBULLY_CSV), "--text-column", "comment", "--tokenizer", str(tmp_path / "nodir")], "no such directory"),
                      (["prepare", str(CYBERBULLY_CSV), "--text-column", "comment", "--tokenizer", "csebuetnlp/banglabert-typo"], "hub cannot be reached")]:
        r = _cli(*args, cache=tmp_path)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert msg in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_hub_name_fails_fast_when_offline(monkeypatch):
    "Without HF_HUB_OFFLINE, an unreachable hub is detected by a short probe, not 50 s of retries."
    import bangla_data.tokenizer as pl
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(pl, "_hub_reachable", lambda timeout=3.0: False)
    t = time.perf_counter()
    with pytest.raises(BanglaDataError, match="not in the local Hugging Face cache"):
        load_tokenizer("csebuetnlp/banglabert")
    assert time.perf_counter() - t < 20  # generous: the point is not waiting for the hub's retries


@pytest.mark.shared
def test_prepare_real_data_folds_and_weights(tmp_path, banglabert):
    p = prepare(CYBERBULLY_CSV, tokenizer=banglabert, text_column="comment", label_columns=CYBERBULLY_LABELS,
                cache_dir=tmp_path, verbose=False, num_folds=5)
    assert p.fold_report.val_in_train == 0 and p.fold_report.max_deviation_pp < 1.0
    assert p.length_report.cover_99 <= 128 and 0 < p.length_report.truncated < 100
    train, val, w = p.fold(2, batch_size=64)
    tr, va = p.splits[2]
    np.testing.assert_allclose(w.numpy(), calculate_class_weights(p.labels[tr]).numpy())
    seen = np.concatenate([b["index"].numpy() for b in val])
    assert sorted(seen.tolist()) == sorted(va.tolist())
