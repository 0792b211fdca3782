"""Integration tests of `bangla_data.dataset` and `bangla_data.loaders` on the real data in ../shared (issue 4):
two ranks under torchrun, a tiny ELECTRA forward/backward, DataLoader workers, and worker memory vs dataset size."""
import json, os, pickle, subprocess, sys, time, warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from bangla_data.tokenized import TokenizedData
from bangla_data.dataset import IndexedDataset
from bangla_data.weights import label_sample_weights
from bangla_data.loaders import create_data_loaders
from bangla_data.loading import load_and_preprocess_data
from conftest import BANGLABERT_DIR, CYBERBULLY_CSV, CYBERBULLY_LABELS, torchrun_ranks

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.shared   # every test here reads the real comments and BanglaBERT in ../shared


@pytest.fixture(scope="module")
def cyber():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_and_preprocess_data(CYBERBULLY_CSV, text_column="comment", label_columns=CYBERBULLY_LABELS, verbose=False)


@pytest.fixture(scope="module")
def real_data(cyber, banglabert, tmp_path_factory):
    "The real comments tokenized with BanglaBERT (max_length 128) through the cache."
    comments, labels = cyber
    try:
        from bangla_data.cache import get_or_create_tokenized_dataset
    except ImportError:   # the cache is written by another issue; fall back to an uncached TokenizedData
        enc = banglabert(comments, truncation=True, max_length=128)["input_ids"]
        return TokenizedData.from_lists(enc, labels, banglabert.pad_token_id, 128, banglabert.all_special_ids, banglabert.mask_token_id)
    return get_or_create_tokenized_dataset(comments, labels, banglabert, 128, tmp_path_factory.mktemp("cache"))


def _split(n, seed=0):
    p = np.random.default_rng(seed).permutation(n)
    return np.sort(p[: int(.8 * n)]), np.sort(p[int(.8 * n):])


# ----------------------------------------------------------------------------------------------- torchrun, 2 ranks
def test_torchrun_two_ranks(tmp_path):
    res = torchrun_ranks(HERE / "ddp_loaders_script.py", tmp_path, 5001)   # 5,001 rows: an odd fold size somewhere
    r0, r1 = res["ranks"]
    train, val = np.array(res["train_idx"]), np.array(res["val_idx"])
    assert (r0["rank"], r1["rank"], r0["world"]) == (0, 1, 2)
    assert r0["data"] == r1["data"], "the ranks loaded different tokenized data"
    assert r0["fold"] == r1["fold"], "the ranks disagree on the fold split"
    assert not [f for f in res["cache_files"] if ".tmp" in f or f.endswith("~")], res["cache_files"]   # no half-written cache
    built = ["cache miss" in r["cache_log"] for r in (r0, r1)]
    assert sum(built) == 1 and all("cache hit" in r["cache_log"] for r in (r0, r1) if "cache miss" not in r["cache_log"]), \
        (r0["cache_log"], r1["cache_log"])                                       # one rank built the cache, the other loaded it
    for e in range(2):
        a, b = np.array(r0["epochs"][e]), np.array(r1["epochs"][e])
        assert r0["n_batches"][e] == r1["n_batches"][e] == r0["len_train_loader"]   # equal step counts: DDP does not hang
        assert len(a) == len(b) == -(-len(train) // 2)
        assert len(np.unique(a)) == len(a) and len(np.unique(b)) == len(b)
        both = np.intersect1d(a, b)
        assert len(both) == len(a) + len(b) - len(train) <= 1                      # disjoint, except the ≤ R-1 padding rows
        assert np.array_equal(np.union1d(a, b), train)                            # together they cover the fold
        tokens = sum(32 * w for w in r0["widths"][e])
        assert tokens < 0.2 * 128 * len(a), "length grouping lost under sharding"
    assert r0["epochs"][0] != r0["epochs"][1]                                     # set_epoch changes the order
    v0, v1 = np.array(r0["val"]), np.array(r1["val"])
    assert np.array_equal(np.union1d(v0, v1), val) and len(np.intersect1d(v0, v1)) <= 1


# ----------------------------------------------------------------------------------------------- tiny ELECTRA
def _tiny_electra(num_labels):
    from transformers import ElectraConfig, ElectraForSequenceClassification
    cfg = ElectraConfig.from_json_file(str(BANGLABERT_DIR / "config.json"))
    cfg.update(dict(embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                    num_labels=num_labels, problem_type="multi_label_classification",
                    id2label={i: c for i, c in enumerate(CYBERBULLY_LABELS)}, label2id={c: i for i, c in enumerate(CYBERBULLY_LABELS)}))
    torch.manual_seed(0)
    return ElectraForSequenceClassification(cfg)


def test_tiny_electra_forward_backward(real_data):
    labels = np.asarray(real_data.labels, dtype=np.float32)
    tr, va = _split(len(real_data))
    train_loader, val_loader = create_data_loaders(real_data, tr, va, batch_size=32, num_workers=0, mask_prob=.1,
                                                   weights=label_sample_weights(labels, {"threat": 5.0}, CYBERBULLY_LABELS))
    model = _tiny_electra(labels.shape[1])
    assert model.config.vocab_size == 32000 and model.config.pad_token_id == real_data.pad_token_id
    pos = labels[tr].sum(0)
    pos_weight = torch.tensor((len(tr) - pos) / np.maximum(pos, 1), dtype=torch.float32)
    batch = next(iter(train_loader))
    assert batch["input_ids"].max() < model.config.vocab_size
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert logits.shape == batch["labels"].shape
    per_sample = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction="none")(logits, batch["labels"]).mean(1)
    loss = (per_sample * batch["weight"]).sum() / batch["weight"].sum()
    loss.backward()
    assert torch.isfinite(loss)
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert grads["electra.embeddings.word_embeddings.weight"].abs().sum() > 0
    assert grads["classifier.out_proj.weight"].abs().sum() > 0
    assert sum(n.startswith("electra.encoder.layer.1.") for n in grads) > 0              # gradients reach the encoder
    # the model's own multi-label loss accepts the batch's float labels
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    assert torch.isfinite(out.loss)
    # a validation batch: no masking, no extra keys needed by the model
    vb = next(iter(val_loader))
    with torch.no_grad():
        assert torch.isfinite(model(input_ids=vb["input_ids"], attention_mask=vb["attention_mask"]).logits).all()
    assert not (vb["input_ids"] == real_data.mask_token_id).any()


# ----------------------------------------------------------------------------------------------- workers on real data
def _epoch(loader):
    return [{k: v.clone() for k, v in b.items()} for b in loader]


def test_two_workers_real_data(real_data):
    tr, va = _split(len(real_data), seed=1)
    kw = dict(batch_size=32, seed=3, mask_prob=.15)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        w_train, w_val = create_data_loaders(real_data, tr, va, num_workers=2, **kw)
        assert w_train.persistent_workers and w_train.num_workers == 2 and not w_train.pin_memory
        t0 = time.perf_counter()
        w_epochs = [_epoch(w_train) for _ in range(2)] + [_epoch(w_val)]
        elapsed = time.perf_counter() - t0
    assert not [w for w in caught if "pin_memory" in str(w.message)], [str(w.message) for w in caught]
    assert elapsed < 120, f"two workers took {elapsed:.0f} s: stuck?"
    s_train, s_val = create_data_loaders(real_data, tr, va, num_workers=0, **kw)
    s_epochs = [_epoch(s_train) for _ in range(2)] + [_epoch(s_val)]
    for we, se, rows in zip(w_epochs, s_epochs, [tr, tr, va]):
        assert all(type(b) is dict and all(type(v) is torch.Tensor for v in b.values()) for b in we)   # tensors, not arrays
        assert np.array_equal(np.sort(torch.cat([b["index"] for b in we]).numpy()), rows)   # every row once
        assert len(we) == len(se)
        for wb, sb in zip(we, se):     # workers give exactly the batches (and masks) of the main process
            assert wb.keys() == sb.keys() and all(torch.equal(wb[k], sb[k]) for k in wb)
    masked = [(b["input_ids"] == real_data.mask_token_id).sum().item() for b in w_epochs[0]]
    real_tokens = sum(b["attention_mask"].sum().item() for b in w_epochs[0])
    assert 0.02 < sum(masked) / real_tokens < 0.2                                   # masking on in training (specials excluded)
    assert not any((b["input_ids"] == real_data.mask_token_id).any() for b in w_epochs[2])   # and off in validation
    assert not all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(w_epochs[0], w_epochs[1]))


class _InitRecorder(IndexedDataset):
    "Adds to each batch the worker id that this worker's `worker_init_fn` recorded (-1 if it never ran)."
    def batch(self, positions):
        return {**super().batch(positions), "init": torch.tensor([int(os.environ.get("BD_TEST_WORKER_INIT", -1))])}


def _record_init(worker_id):
    os.environ["BD_TEST_WORKER_INIT"] = str(worker_id)


_ARRIVED = []

def _count_arrival(arrays):
    "What an `ArrayBatch` becomes in the training process (`tensor_batch`), counted."
    from bangla_data.loaders import tensor_batch
    _ARRIVED.append(1)
    return tensor_batch(arrays)


def test_worker_channels_and_init_fn(real_data, monkeypatch):
    "BatchLoader workers send arrays (turned back into tensors); plain DataLoader workers send tensors; both run the user's init."
    from torch.utils.data import DataLoader
    from bangla_data.dataset import collate_batch
    from bangla_data.loaders import ArrayBatch, BatchLoader, LengthGroupedBatchSampler
    arrived = _ARRIVED                     # batches that came through the pipe as arrays, counted where they arrive
    monkeypatch.setattr(ArrayBatch, '__reduce__', lambda self: (_count_arrival, (dict(self),)))
    tr = np.arange(0, len(real_data), 3)
    ds = _InitRecorder(real_data, tr, mask_prob=.1, weights=np.linspace(1, 2, len(real_data)))
    got = {}
    for cls in (BatchLoader, DataLoader):
        loader = cls(ds, batch_sampler=LengthGroupedBatchSampler(ds.lengths, 32, seed=9), num_workers=2, collate_fn=collate_batch,
                     worker_init_fn=_record_init, persistent_workers=True, multiprocessing_context="fork")
        arrived.clear()
        it = iter(loader)
        assert len(it) == len(loader) and len(it._workers) == 2      # the iterator is PyTorch's, attributes and all
        got[cls] = [{k: v.clone() for k, v in b.items()} for b in it] + _epoch(loader)
        got[cls, 'arrays'] = len(arrived)
        assert loader.worker_init_fn is _record_init                 # the loader's own setting is left as it was
    assert os.environ.get("BD_TEST_WORKER_INIT") is None             # the init ran in the workers only
    ours, plain = got[BatchLoader], got[DataLoader]
    assert len(ours) == len(plain) == 2 * len(loader)
    for a, b in zip(ours, plain):
        assert a.keys() == b.keys() and all(type(v) is torch.Tensor and torch.equal(v, b[k]) for k, v in a.items())
    assert {int(b["init"]) for b in ours} == {0, 1} == {int(b["init"]) for b in plain}
    assert got[BatchLoader, 'arrays'] == len(ours) and got[DataLoader, 'arrays'] == 0   # arrays through the pipe vs shared memory
    assert np.array_equal(np.sort(torch.cat([b["index"] for b in ours[:len(loader)]]).numpy()), tr)


def test_spawn_workers_get_the_cache_path_not_its_arrays(real_data):
    "Under `spawn` a worker gets the pickled dataset: a mapped cache entry must travel as its path (issue 4)."
    assert isinstance(real_data.ids, np.memmap), "the fixture should give a memory-mapped cache entry"
    td_bytes, ds_bytes = len(pickle.dumps(real_data)), len(pickle.dumps(IndexedDataset(real_data, np.arange(1000))))
    print(f"\npickled: TokenizedData {td_bytes:,} B, IndexedDataset of 1,000 rows {ds_bytes:,} B (token arrays {real_data.nbytes:,} B)")
    assert ds_bytes < 100_000, f"an IndexedDataset of 1,000 rows pickles to {ds_bytes:,} bytes: the token arrays travel with it"
    tr, va = _split(len(real_data), seed=2)
    kw = dict(batch_size=32, seed=4, mask_prob=.15)
    sp_train, sp_val = create_data_loaders(real_data, tr, va, num_workers=2, multiprocessing_context="spawn", **kw)
    sp = [_epoch(sp_train), _epoch(sp_val)]
    s_train, s_val = create_data_loaders(real_data, tr, va, num_workers=0, **kw)
    for we, se, rows in zip(sp, [_epoch(s_train), _epoch(s_val)], [tr, va]):
        assert np.array_equal(np.sort(torch.cat([b["index"] for b in we]).numpy()), rows)
        assert len(we) == len(se)
        for wb, sb in zip(we, se):
            assert wb.keys() == sb.keys() and all(torch.equal(wb[k], sb[k]) for k in wb)


# ----------------------------------------------------------------------------------------------- worker memory
def _mem_kb(pid):
    "Resident, proportional and private (USS) memory of a process, in kB."
    vals = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, *rest = line.split()
            if k in ("Rss:", "Pss:", "Private_Clean:", "Private_Dirty:"): vals[k[:-1]] = int(rest[0])
    return dict(rss=vals["Rss"], pss=vals["Pss"], uss=vals["Private_Clean"] + vals["Private_Dirty"])


def _repeated_mmap(td, k, folder):
    "`td` repeated `k` times, written to .npy files and memory-mapped back (what a cache hit returns)."
    ids = np.tile(np.asarray(td.ids), k)
    off = np.asarray(td.offsets, dtype=np.int64)
    offsets = np.concatenate([(off[:-1][None, :] + off[-1] * np.arange(k)[:, None]).ravel(), [off[-1] * k]])
    labels = np.tile(np.asarray(td.labels), (k, 1))
    folder.mkdir()
    arrays = {}
    for name, a in [("ids", ids), ("offsets", offsets), ("labels", labels)]:
        np.save(folder / f"{name}.npy", a)
        arrays[name] = np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
    del ids, offsets, labels
    return TokenizedData(arrays["ids"], arrays["offsets"], arrays["labels"], td.pad_token_id, td.max_length,
                         td.special_token_ids, td.mask_token_id)


def _peak_worker_memory(td):
    n = len(td)
    train_loader, _ = create_data_loaders(td, np.arange(n - 100), np.arange(n - 100, n), batch_size=1024, num_workers=2, seed=0)
    it = iter(train_loader)
    pids = [w.pid for w in it._workers]
    peak = dict(rss=0, pss=0, uss=0)
    for i, _ in enumerate(it):
        if i % 100 == 0:
            mem = [_mem_kb(p) for p in pids]
            for k in peak: peak[k] = max(peak[k], sum(m[k] for m in mem))
    mem = [_mem_kb(p) for p in pids]
    for k in peak: peak[k] = max(peak[k], sum(m[k] for m in mem))
    del it, train_loader
    return peak


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="needs Linux /proc smaps_rollup")
def test_worker_memory_does_not_grow_with_data(real_data, tmp_path):
    small, big = _repeated_mmap(real_data, 20, tmp_path / "small"), _repeated_mmap(real_data, 200, tmp_path / "big")
    grew_mb = (big.nbytes - small.nbytes) / 1e6
    p_small, p_big = _peak_worker_memory(small), _peak_worker_memory(big)
    growth_mb = (p_big["uss"] - p_small["uss"]) / 1e3
    print(f"\n{len(small):,} vs {len(big):,} rows (+{grew_mb:.0f} MB of cache): peak private memory of 2 workers "
          f"{p_small['uss'] / 1e3:.0f} vs {p_big['uss'] / 1e3:.0f} MB; RSS {p_small['rss'] / 1e3:.0f} vs {p_big['rss'] / 1e3:.0f} MB "
          f"(shared, memory-mapped pages included)")
    assert grew_mb > 60
    assert growth_mb < 0.25 * grew_mb, f"worker private memory grew by {growth_mb:.0f} MB for {grew_mb:.0f} MB more data"
