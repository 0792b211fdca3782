"""A warm `prepare()` (issue 16): it finds the tokenized entry from the tokenizer's files, the cleaned texts, the
reports and the splits in the cache — building no tokenizer, importing neither transformers nor scikit-learn —
and gives exactly what a cold run gives; any changed input (a tokenizer file, a text, a cleaning option, the seed)
is a miss.
"""
import json, os, subprocess, sys, textwrap
import numpy as np
import pandas as pd
import pytest
from bangla_data import prepare
from bangla_data.loading import SAMPLE_PATH
from bangla_data.tokenizer import DeferredTokenizer, sample_tokenizer
from conftest import BANGLABERT_DIR, CYBERBULLY_CSV, CYBERBULLY_LABELS

HEAVY = ("transformers", "sklearn", "scipy", "matplotlib", "iterstrat")


def _state(p):
    "Everything a run hands on, as comparable plain data."
    tr, va, pw = p.fold(0)
    return dict(comments=p.comments, labels=p.labels.tolist(), folds=p.split_table()["fold"].tolist(),
                ids=np.asarray(p.tokenized.ids).tolist(), offsets=np.asarray(p.tokenized.offsets).tolist(),
                unk=p.unk, lengths=p.length_report.to_dict(), report=str(p.fold_report), pos_weight=pw.tolist(),
                first_batch=next(iter(tr))["input_ids"].tolist(), warnings=p.warnings)


def _run(data, tok_dir, cache, **kw):
    return prepare(data, tokenizer=str(tok_dir), cache_dir=str(cache), verbose=False, **kw)


@pytest.fixture
def tok_dir(tmp_path):
    d = tmp_path / "tok"
    sample_tokenizer().save_pretrained(d)
    return d


def test_warm_equals_cold_and_builds_no_tokenizer(tmp_path, tok_dir):
    cold = _run(SAMPLE_PATH, tok_dir, tmp_path / "c")
    warm = _run(SAMPLE_PATH, tok_dir, tmp_path / "c")
    assert (cold.cache["status"], warm.cache["status"]) == ("miss", "hit")
    assert not isinstance(cold._tokenizer, DeferredTokenizer) and isinstance(warm._tokenizer, DeferredTokenizer)
    assert _state(warm) == _state(cold)
    assert warm.tokenizer.pad_token_id == cold.tokenizer.pad_token_id            # loaded when asked for
    assert warm.load_info.cleaning_cache == "hit" and cold.load_info.cleaning_cache == "miss"


def test_every_changed_input_is_a_miss(tmp_path, tok_dir):
    cache = tmp_path / "c"
    base = _run(SAMPLE_PATH, tok_dir, cache)
    # a tokenizer file that changes how text is tokenized: the files' record and the entry miss
    tj = tok_dir / "tokenizer.json"
    spec = json.loads(tj.read_text(encoding="utf-8"))
    common = np.bincount(np.asarray(base.tokenized.ids)).argsort()[::-1]
    drop = next(t for t, i in spec["model"]["vocab"].items() if i in common[:20] and not t.startswith("["))
    del spec["model"]["vocab"][drop]                 # a common piece gone from the vocabulary: other ids
    tj.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    changed = _run(SAMPLE_PATH, tok_dir, cache)
    assert changed.cache["status"] == "miss" and not isinstance(changed._tokenizer, DeferredTokenizer)
    assert np.asarray(changed.tokenized.ids).tolist() != np.asarray(base.tokenized.ids).tolist()
    fresh = _run(SAMPLE_PATH, tok_dir, tmp_path / "fresh")        # what an empty cache gives for the new files
    assert _state(changed) == _state(fresh)
    # a changed text, cleaning option or seed: each computed again, and equal to a run without any cache
    df = pd.read_csv(SAMPLE_PATH)
    df.loc[3, "comment_text"] = df.loc[3, "comment_text"] + " নতুন😯"
    for data, kw in [(df, {}), (SAMPLE_PATH, dict(clean_options={"emoji": "name"})), (SAMPLE_PATH, dict(seed=7))]:
        again = _run(data, tok_dir, cache, **kw)
        alone = _run(data, tok_dir, tmp_path / f"alone{len(os.listdir(tmp_path))}", **kw)
        assert _state(again) == _state(alone), kw
    assert _state(_run(SAMPLE_PATH, tok_dir, cache, seed=7))["folds"] != _state(base)["folds"]


def test_a_damaged_report_is_recomputed(tmp_path, tok_dir):
    cache = tmp_path / "c"
    cold = _run(SAMPLE_PATH, tok_dir, cache)
    for kind in ("reports", "splits", "cleaned", "tokenizers"):
        for f in (cache / kind).iterdir(): f.write_bytes(f.read_bytes()[:-5] + b"xxxxx")
    again = _run(SAMPLE_PATH, tok_dir, cache)
    a, c = _state(again), _state(cold)
    assert any("cleaning cache" in w and "checksum" in w for w in a["warnings"]["load"]), a["warnings"]
    a["warnings"].pop("load")
    assert a == c


WARM_SCRIPT = textwrap.dedent("""
    import json, sys
    from bangla_data import prepare
    p = prepare(sys.argv[1], tokenizer=sys.argv[2], text_column='comment', label_columns=sys.argv[4].split(','),
                cache_dir=sys.argv[3], verbose=False)
    tr, va, pw = p.fold(0)
    batches = sum(1 for _ in tr)
    heavy = [m for m in %r if m in sys.modules]
    print(json.dumps(dict(status=p.cache['status'], heavy=heavy, batches=batches, unk=p.unk,
                          folds=p.split_table()['fold'].tolist(), pw=pw.tolist(), report=str(p.fold_report),
                          pad=p.tokenizer.pad_token_id)))
""" % (HEAVY,))


@pytest.mark.shared
def test_warm_run_on_real_data_imports_nothing_heavy(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(WARM_SCRIPT)
    args = [sys.executable, str(script), str(CYBERBULLY_CSV), str(BANGLABERT_DIR), str(tmp_path / "cache"),
            ",".join(CYBERBULLY_LABELS)]
    runs = []
    for _ in range(2):
        r = subprocess.run(args, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    cold, warm = runs
    assert cold["status"] == "miss" and "transformers" in cold["heavy"]
    assert warm["status"] == "hit" and warm["heavy"] == [], warm["heavy"]   # p.tokenizer was read after the check
    assert {k: v for k, v in warm.items() if k not in ("status", "heavy")} == \
        {k: v for k, v in cold.items() if k not in ("status", "heavy")}
    assert warm["unk"]["clean"] <= 0.001 and warm["unk"]["bangla_share"] == 0.0
