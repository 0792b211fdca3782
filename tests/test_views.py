"""Teacher and student views in one batch (issue 13), on the real comments with BanglaBERT and mBERT cased.

For every batch of an epoch (training and validation; `num_workers` 0 and 2): the views hold the same rows in the
same order, each view's ids equal that tokenizer's own encoding of those rows' texts (truncated at its
`max_length`), padding only at the right end, every training row exactly once per epoch; masking per view; views of
other rows refused; `prepare(tokenizer={...})`. Two ranks under torchrun: `test_torchrun_two_ranks_views`.
"""
import json, os, subprocess, sys, warnings
from pathlib import Path
import numpy as np
import pytest
import torch

from bangla_data.env import BanglaDataError
from bangla_data.cache import get_or_create_tokenized_dataset
from bangla_data.kfold import prepare_kfold_splits
from bangla_data.loaders import create_data_loaders, to_device
from conftest import BANGLABERT_DIR, CYBERBULLY_CSV, CYBERBULLY_LABELS, MBERT_DIR, torchrun_ranks

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.shared
MAX_LENGTH = {"teacher": 128, "student": 64}      # different per view: each view truncates at its own


@pytest.fixture(scope="module")
def real(cyberbully, banglabert, mbert, tmp_path_factory):
    "Views of the real comments, the expected encodings per view, and fold 0."
    comments, labels = cyberbully
    cache = tmp_path_factory.mktemp("views-cache")
    toks = {"teacher": banglabert, "student": mbert}
    views = {v: get_or_create_tokenized_dataset(comments, labels, t, MAX_LENGTH[v], cache, verbose=False)
             for v, t in toks.items()}
    expected = {v: t(comments, truncation=True, max_length=MAX_LENGTH[v])["input_ids"] for v, t in toks.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_idx, val_idx = prepare_kfold_splits(comments, labels, num_folds=5, seed=42)[0]
    return dict(comments=comments, labels=labels, toks=toks, views=views, expected=expected, cache=cache,
                train_idx=np.asarray(train_idx), val_idx=np.asarray(val_idx))


def check_epoch(loader, real, batch_size):
    "Check every batch of one epoch of a views loader; return the epoch's row order."
    order = []
    for b in loader:
        rows = b["index"].numpy()
        assert len(rows) <= batch_size
        np.testing.assert_array_equal(b["labels"].numpy(), real["labels"][rows].astype(np.float32))
        for v, td in real["views"].items():
            ids, mask = b[v]["input_ids"], b[v]["attention_mask"]
            assert ids.shape == mask.shape and ids.shape[0] == len(rows)
            lens = mask.sum(1)
            # padding only at the right end, and only to the view's own longest row
            assert torch.equal(mask, (torch.arange(mask.shape[1])[None] < lens[:, None]).long())
            assert mask.shape[1] == int(lens.max())
            assert (ids[mask == 0] == td.pad_token_id).all()
            got = ids.tolist()
            for i, r in enumerate(rows.tolist()):       # the same rows, in the same order, in every view
                assert got[i][:int(lens[i])] == real["expected"][v][r], (v, r)
        order.append(rows)
    return np.concatenate(order)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_views_every_batch(real, num_workers):
    train_idx, val_idx = real["train_idx"], real["val_idx"]
    train, val = create_data_loaders(real["views"], train_idx, val_idx, batch_size=32, num_workers=num_workers)
    orders = [check_epoch(train, real, 32) for _ in range(2)]
    for o in orders:
        assert len(o) == len(train_idx) and np.array_equal(np.sort(o), np.sort(train_idx))   # every row exactly once
    assert not np.array_equal(orders[0], orders[1])                                        # reshuffled per epoch
    assert np.array_equal(check_epoch(val, real, 32), val_idx)                             # validation order kept
    # the same batches with and without workers, and the single-view loaders' seeds and index order
    ref = create_data_loaders(real["views"], train_idx, val_idx, batch_size=32, num_workers=0)[0]
    assert np.array_equal(torch.cat([b["index"] for b in ref]).numpy(), orders[0])


def test_views_padding_and_lengths(real):
    "Grouped together, each view stays lightly padded (the benchmark's target: <= 20% on 44,000 rows)."
    train, _ = create_data_loaders(real["views"], real["train_idx"], real["val_idx"], batch_size=32, num_workers=0)
    fed = {v: 0 for v in real["views"]}; used = dict(fed)
    for b in train:
        for v in fed: fed[v] += b[v]["attention_mask"].numel(); used[v] += int(b[v]["attention_mask"].sum())
    for v in fed: assert 1 - used[v] / fed[v] <= 0.25, (v, 1 - used[v] / fed[v])


def test_views_masking_per_view(real):
    "Token masking uses each view's own mask id and never touches its special tokens or padding."
    train, _ = create_data_loaders(real["views"], real["train_idx"], real["val_idx"], batch_size=32, num_workers=0,
                                   mask_prob=0.3, pad_to_multiple_of=8)
    for b in list(train)[:20]:
        rows = b["index"].numpy()
        for v, td in real["views"].items():
            ids, mask = b[v]["input_ids"], b[v]["attention_mask"].bool()
            assert ids.shape[1] % 8 == 0
            orig = td.batch(rows, pad_to=ids.shape[1])["input_ids"]
            changed = ids != orig
            assert (ids[changed] == td.mask_token_id).all()
            assert not (changed & (~mask | torch.isin(orig, torch.as_tensor(td.special_token_ids)))).any()
            can = mask & ~torch.isin(orig, torch.as_tensor(td.special_token_ids))
            assert 0.15 < changed.sum().item() / can.sum().item() < 0.45
    assert real["toks"]["teacher"].mask_token_id != real["toks"]["student"].mask_token_id


def test_views_of_other_rows_refused(real, toxic):
    comments, labels = real["comments"], real["labels"]
    td_s = real["views"]["student"]
    other = get_or_create_tokenized_dataset(toxic[0], toxic[1], real["toks"]["student"], 64, real["cache"],
                                            verbose=False)
    with pytest.raises(BanglaDataError, match="views 'teacher' and 'student' do not hold the same rows: their row"):
        create_data_loaders({"teacher": real["views"]["teacher"], "student": other}, [0], [1])
    perm = np.random.default_rng(0).permutation(len(comments))
    shuffled = get_or_create_tokenized_dataset([comments[i] for i in perm], labels[perm], real["toks"]["student"],
                                               64, real["cache"], verbose=False)
    with pytest.raises(BanglaDataError, match="their labels differ"):
        create_data_loaders({"teacher": real["views"]["teacher"], "student": shuffled}, [0], [1])
    edited = get_or_create_tokenized_dataset(comments[:-1] + [comments[-1] + " x"], labels, real["toks"]["student"],
                                             64, real["cache"], verbose=False)
    with pytest.raises(BanglaDataError, match="their texts differ"):
        create_data_loaders({"teacher": real["views"]["teacher"], "student": edited}, [0], [1])
    assert td_s is real["views"]["student"]


def test_to_device_nested(real):
    b = next(iter(create_data_loaders(real["views"], real["train_idx"], real["val_idx"], num_workers=0)[1]))
    moved = to_device(b, "meta")
    assert moved["teacher"]["input_ids"].device.type == "meta" and moved["labels"].device.type == "meta"


def test_single_view_unchanged(real):
    "One TokenizedData: exactly the batches of before (no nesting); a dict of one view: the same ids, nested."
    td = real["views"]["teacher"]
    a, _ = create_data_loaders(td, real["train_idx"], real["val_idx"], num_workers=0)
    b, _ = create_data_loaders({"teacher": td}, real["train_idx"], real["val_idx"], num_workers=0,
                               order_views_by="teacher")
    for x, y in zip(a, b):
        assert set(x) == {"input_ids", "attention_mask", "labels", "index"}
        assert torch.equal(x["input_ids"], y["teacher"]["input_ids"]) and torch.equal(x["index"], y["index"])


def test_torchrun_two_ranks_views(tmp_path):
    res = torchrun_ranks(HERE / "ddp_views_script.py", tmp_path, 5001)
    r0, r1 = res["ranks"]
    train, val = np.array(res["train_idx"]), np.array(res["val_idx"])
    assert (r0["rank"], r1["rank"], r0["world"]) == (0, 1, 2)
    assert r0["data"] == r1["data"] and r0["fold"] == r1["fold"]
    for r in (r0, r1): assert r["mismatches"] == 0 and r["checked"] > 0, r["mismatch_examples"]
    for e in range(2):
        a, b = np.array(r0["epochs"][e]), np.array(r1["epochs"][e])
        assert r0["n_batches"][e] == r1["n_batches"][e] == r0["len_train_loader"]
        assert len(a) == len(b) == -(-len(train) // 2)
        assert len(np.unique(a)) == len(a) and len(np.unique(b)) == len(b)
        assert len(np.intersect1d(a, b)) == len(a) + len(b) - len(train) <= 1    # disjoint, but the padding row
        assert np.array_equal(np.union1d(a, b), train)
        for v in ("teacher", "student"):                                         # grouping survives sharding
            assert r0["padding"][e][v] < 0.3 and r1["padding"][e][v] < 0.3, (v, r0["padding"][e], r1["padding"][e])
    assert r0["epochs"][0] != r0["epochs"][1]
    v0, v1 = np.array(r0["val"]), np.array(r1["val"])
    assert np.array_equal(np.union1d(v0, v1), val) and len(np.intersect1d(v0, v1)) <= 1


def test_prepare_views(real, tmp_path):
    "prepare(tokenizer={...}): one load and split, one cache entry per tokenizer (its key as alone), nested batches."
    import bangla_data.pipeline as pipeline
    kw = dict(data=CYBERBULLY_CSV, text_column="comment", label_columns=CYBERBULLY_LABELS, cache_dir=tmp_path,
              verbose=False, report_unk=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = {v: pipeline.prepare(tokenizer=str(d), max_length=MAX_LENGTH[v], **kw)
                 for v, d in (("teacher", BANGLABERT_DIR), ("student", MBERT_DIR))}
        p = pipeline.prepare(tokenizer={"teacher": str(BANGLABERT_DIR), "student": str(MBERT_DIR)},
                             max_length=MAX_LENGTH, **kw)
    assert list(p.views) == ["teacher", "student"]
    for v in p.views:
        assert p.views[v]["cache"]["status"] == "hit"                 # the entry the tokenizer alone made
        assert p.views[v]["tokenized"].manifest["key"] == alone[v].tokenized.manifest["key"]
    assert [s.tolist() for _, s in p.splits] == [s.tolist() for _, s in alone["teacher"].splits]
    assert p.comments == real["comments"]
    train, val, pos_weight = p.fold(0, batch_size=32, num_workers=0)
    assert torch.allclose(pos_weight, alone["teacher"].fold(0)[2])
    sub = dict(real, train_idx=p.splits[0][0], val_idx=p.splits[0][1])
    order = check_epoch(train, sub, 32)
    assert np.array_equal(np.sort(order), np.sort(p.splits[0][0]))
    assert np.array_equal(check_epoch(val, sub, 32), p.splits[0][1])
    # a single tokenizer: today's flat batches, unchanged
    flat = next(iter(alone["teacher"].fold(0)[1]))
    assert set(flat) == {"input_ids", "attention_mask", "labels", "index"} and alone["teacher"].views is None
