"""A warm `prepare()` (issue 16): it finds the tokenized entry from the tokenizer's files, the cleaned texts, the
reports and the splits in the cache — building no tokenizer, importing neither transformers nor scikit-learn —
and gives exactly what a cold run gives; any changed input (a tokenizer file, a text, a cleaning option, the seed)
is a miss. The same for a hub name whose snapshot is in the Hugging Face cache; a new revision there is a miss.
"""
import hashlib, json, os, subprocess, sys, textwrap
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from bangla_data import prepare
from bangla_data.sample import SAMPLE_PATH
from bangla_data.tokenizer import _LEGACY_CACHE_VARS, DeferredTokenizer
from bangla_data.sample import sample_tokenizer
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
    assert not isinstance(cold.first_view.tokenizer, DeferredTokenizer) and isinstance(warm.first_view.tokenizer, DeferredTokenizer)
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
    assert changed.cache["status"] == "miss" and not isinstance(changed.first_view.tokenizer, DeferredTokenizer)
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
    import hashlib, json, sys
    import numpy as np
    from bangla_data import prepare
    data, tok, cache, labels, text = sys.argv[1:6]
    kw = dict(text_column=text, label_columns=labels.split(',')) if text else {}   # else the sample's columns
    p = prepare(data, tokenizer=tok, cache_dir=cache, verbose=False, **kw)
    tr, va, pw = p.fold(0)
    batches = sum(1 for _ in tr)
    heavy = [m for m in %r if m in sys.modules]
    print(json.dumps(dict(status=p.cache['status'], heavy=heavy, batches=batches, unk=p.unk,
                          folds=p.split_table()['fold'].tolist(), pw=pw.tolist(), report=str(p.fold_report),
                          ids=hashlib.sha256(np.asarray(p.tokenized.ids).tobytes()).hexdigest(),
                          pad=p.tokenizer.pad_token_id)))
""" % (HEAVY,))


def _runs(tmp_path, data, tok, cache, times=2, labels=(), text="", env=None):
    "Run WARM_SCRIPT `times` times, each in a fresh process; their results."
    script = tmp_path / "run.py"
    script.write_text(WARM_SCRIPT)
    args = [sys.executable, str(script), str(data), str(tok), str(cache), ",".join(labels), text]
    out = []
    for _ in range(times):
        base = {k: v for k, v in os.environ.items() if k not in _LEGACY_CACHE_VARS}   # transformers 4's caches
        r = subprocess.run(args, capture_output=True, text=True, timeout=600, env={**base, **(env or {})})
        assert r.returncode == 0, r.stderr[-3000:]
        out.append(json.loads(r.stdout.strip().splitlines()[-1]))
    return out


def _hub_cache(root, files_from, name, commit):
    "A hub cache at `root`: `files_from`'s files as repo `name` at `commit`, laid out as huggingface_hub does."
    repo = root / ("models--" + name.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir(exist_ok=True); (repo / "refs").mkdir(exist_ok=True)
    for f in sorted(Path(files_from).iterdir()):
        blob = repo / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
        blob.write_bytes(f.read_bytes())
        (snapshot / f.name).symlink_to(os.path.relpath(blob, snapshot))          # snapshot files link to blobs
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def _differs(base, other):
    return {k: v for k, v in base.items() if k not in ("status", "heavy")} != \
        {k: v for k, v in other.items() if k not in ("status", "heavy")}


def test_hub_name_in_the_hf_cache_is_warm_and_a_new_revision_is_a_miss(tmp_path, tok_dir):
    (tok_dir / "config.json").write_text('{"model_type": "bert"}')              # as a model repository has
    hub, name = tmp_path / "hub", "bangla-data/sample-tokenizer"
    env = dict(HF_HUB_CACHE=str(hub), HF_HUB_OFFLINE="1")
    _hub_cache(hub, tok_dir, name, "1" * 40)
    cold, warm = _runs(tmp_path, SAMPLE_PATH, name, tmp_path / "c", env=env)
    assert (cold["status"], warm["status"]) == ("miss", "hit")
    assert "transformers" in cold["heavy"] and "transformers" not in warm["heavy"], warm["heavy"]   # nothing built
    assert not _differs(cold, warm)
    (by_dir,) = _runs(tmp_path, SAMPLE_PATH, tok_dir, tmp_path / "d", times=1)
    assert not _differs(cold, by_dir)                                            # the same as the directory gives
    # a new revision on the hub, downloaded: refs/main names another snapshot, with another vocabulary
    new = tmp_path / "new"
    sample_tokenizer(vocab_size=1000).save_pretrained(new)
    (new / "config.json").write_text('{"model_type": "bert"}')
    _hub_cache(hub, new, name, "2" * 40)
    changed, again = _runs(tmp_path, SAMPLE_PATH, name, tmp_path / "c", env=env)
    assert (changed["status"], again["status"]) == ("miss", "hit") and "transformers" in changed["heavy"]
    (fresh,) = _runs(tmp_path, SAMPLE_PATH, new, tmp_path / "f", times=1)
    assert changed["ids"] != cold["ids"] and not _differs(changed, fresh) and not _differs(again, fresh)


def test_a_hub_name_downloaded_by_the_cold_run_is_warm_next_time(tmp_path, tok_dir, monkeypatch):
    import huggingface_hub.constants
    import bangla_data.cache as pipeline   # the tokenize step (where the tokenizer is loaded) lives in cache
    (tok_dir / "config.json").write_text('{"model_type": "bert"}')
    hub, name = tmp_path / "hub", "bangla-data/sample-tokenizer"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    for v in _LEGACY_CACHE_VARS: monkeypatch.delenv(v, raising=False)
    real = pipeline.load_tokenizer
    def download(spec):             # what from_pretrained does online: the snapshot appears, then it is loaded
        _hub_cache(hub, tok_dir, name, "3" * 40)
        return real(spec)
    monkeypatch.setattr(pipeline, "load_tokenizer", download)
    cold = prepare(SAMPLE_PATH, tokenizer=name, cache_dir=str(tmp_path / "c"), verbose=False)
    monkeypatch.setattr(pipeline, "load_tokenizer", real)
    warm = prepare(SAMPLE_PATH, tokenizer=name, cache_dir=str(tmp_path / "c"), verbose=False)
    assert (cold.cache["status"], warm.cache["status"]) == ("miss", "hit")
    assert isinstance(warm.first_view.tokenizer, DeferredTokenizer) and not warm.first_view.tokenizer.loaded      # nothing built
    assert _state(warm) == _state(cold)


def test_a_tokenizer_changed_after_a_warm_run_is_refused_when_it_loads(tmp_path, tok_dir):
    _run(SAMPLE_PATH, tok_dir, tmp_path / "c")
    warm, warm2 = (_run(SAMPLE_PATH, tok_dir, tmp_path / "c") for _ in range(2))
    assert all(isinstance(w.first_view.tokenizer, DeferredTokenizer) and not w.first_view.tokenizer.loaded for w in (warm, warm2))
    (tok_dir / "trainer_state.json").write_text("{}")                   # a file that is not the tokenizer: fine
    assert warm.tokenizer.get_vocab() == sample_tokenizer().get_vocab()
    sample_tokenizer(vocab_size=300).save_pretrained(tok_dir)            # another tokenizer in its place
    with pytest.raises(ValueError, match="changed after prepare"):      # not a tokenizer that misses the ids
        warm2.tokenizer


def test_files_changed_while_the_tokenizer_loads_are_not_remembered(tmp_path, tok_dir, monkeypatch):
    import bangla_data.cache as pipeline   # the tokenize step (where the tokenizer is loaded) lives in cache
    real = pipeline.load_tokenizer
    def load_then_edit(spec):       # another process edits the directory just after the tokenizer was read
        tok = real(spec)
        (tok_dir / "added_later.txt").write_text("x")
        return tok
    monkeypatch.setattr(pipeline, "load_tokenizer", load_then_edit)
    _run(SAMPLE_PATH, tok_dir, tmp_path / "c")
    assert not (tmp_path / "c" / "tokenizers").exists()         # no record for files it was not built from
    monkeypatch.setattr(pipeline, "load_tokenizer", real)
    assert not isinstance(_run(SAMPLE_PATH, tok_dir, tmp_path / "c").first_view.tokenizer, DeferredTokenizer)   # built again


@pytest.mark.shared
@pytest.mark.parametrize("given", ["directory", "hub name"])
def test_warm_run_on_real_data_imports_nothing_heavy(tmp_path, given):
    tok, env = BANGLABERT_DIR, {}
    if given == "hub name":   # BanglaBERT's files as huggingface_hub caches them, offline
        _hub_cache(tmp_path / "hub", BANGLABERT_DIR, "csebuetnlp/banglabert", "b" * 40)
        tok, env = "csebuetnlp/banglabert", dict(HF_HUB_CACHE=str(tmp_path / "hub"), HF_HUB_OFFLINE="1")
    cold, warm = _runs(tmp_path, CYBERBULLY_CSV, tok, tmp_path / "cache", labels=CYBERBULLY_LABELS, text="comment",
                       env=env)
    assert cold["status"] == "miss" and "transformers" in cold["heavy"]
    assert warm["status"] == "hit" and warm["heavy"] == [], warm["heavy"]   # p.tokenizer was read after the check
    assert not _differs(cold, warm)
    assert warm["unk"]["clean"] <= 0.001 and warm["unk"]["bangla_share"] == 0.0
