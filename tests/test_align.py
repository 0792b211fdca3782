"""The student-teacher alignment (issue 22), on the real comments with BanglaBERT (teacher) and mBERT cased (student).

For every batch of an epoch (training and validation; `num_workers` 0 and 2): `align` equals the character overlap
computed from each tokenizer's own `return_offsets_mapping` on the cleaned comment (an independent computation:
per row, from the offsets, [CLS] to [CLS] and [SEP] to [SEP] by the special-tokens mask); every row of a real student
token with a teacher counterpart sums to 1 and `align_mask` marks exactly those; nothing on padding; the word pooling
of both views against words found from the offsets. The spans of the cache equal the tokenizers' offsets for every
row (packed at one byte a token); data without spans is refused for alignment with the reason. The hidden-state and
attention losses on a real aligned batch equal a direct loop over its tokens. Two ranks under torchrun:
`test_torchrun_two_ranks_align`.
"""
import warnings
from pathlib import Path
import numpy as np
import pytest
import torch

from bangla_data.env import BanglaDataError
from bangla_data.cache import get_or_create_tokenized_dataset
from bangla_data.kfold import prepare_kfold_splits
from bangla_data.loaders import create_data_loaders
from bangla_data.tokenize import tokenize_to_data
from bangla_data.tokenized import TokenizedData
from bangla_data.kd_losses import attention_loss, hidden_state_loss
from bangla_data.align import char_align
from conftest import torchrun_ranks

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.shared
MAX_LENGTH = {"teacher": 48, "student": 128}    # the teacher truncates first: student tokens past it have no counterpart
ALIGN = ("student", "teacher")


def offsets(tok, texts, max_length):
    "Each text's token offsets and special-token mask from the tokenizer's own call."
    enc = tok(texts, truncation=True, max_length=max_length, return_offsets_mapping=True,
              return_special_tokens_mask=True, verbose=False)
    return [(np.asarray(o, dtype=np.int64).reshape(-1, 2), np.asarray(m, dtype=bool))
            for o, m in zip(enc["offset_mapping"], enc["special_tokens_mask"])]


def reference_align(s, t):
    "One row's alignment from the two tokenizers' offsets: overlaps, normalised per student token; specials by position."
    (so, ss), (to, ts) = s, t
    ov = np.maximum(np.minimum(so[:, None, 1], to[None, :, 1]) - np.maximum(so[:, None, 0], to[None, :, 0]), 0)
    ov[ss] = 0; ov[:, ts] = 0
    if ss[0] and ts[0]: ov[0, 0] = 1                # [CLS] -> [CLS]
    if ss[-1] and ts[-1]: ov[-1, -1] = 1            # [SEP] -> [SEP]
    total = ov.sum(1, keepdims=True)
    return np.where(total > 0, ov / np.maximum(total, 1), 0), total[:, 0] > 0


def reference_words(text_len, *views):
    "The words of a row from the offsets of its views: maximal runs of characters some text token covers."
    covered = np.zeros(text_len + 1, bool)
    for o, special in views:
        for a, b in o[~special]: covered[a:b] = True
    edges = np.flatnonzero(np.diff(np.r_[0, covered.astype(np.int8)]))
    return edges.reshape(-1, 2)


@pytest.fixture(scope="module")
def real(cyberbully, banglabert, mbert, tmp_path_factory):
    "Views of the real comments through the cache (with their spans), each tokenizer's offsets, fold 0."
    comments, labels = cyberbully
    cache = tmp_path_factory.mktemp("align-cache")
    toks = {"teacher": banglabert, "student": mbert}
    views = {v: get_or_create_tokenized_dataset(comments, labels, t, MAX_LENGTH[v],
                                                cache, verbose=False)
             for v, t in toks.items()}
    offs = {v: offsets(t, comments, MAX_LENGTH[v]) for v, t in toks.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_idx, val_idx = prepare_kfold_splits(comments, labels, num_folds=5, seed=42)[0]
    return dict(comments=comments, labels=labels, toks=toks, views=views, offs=offs, cache=cache,
                train_idx=np.asarray(train_idx), val_idx=np.asarray(val_idx))


def check_align_epoch(loader, real, words=False):
    "Check `align` (and the words) of every batch of one epoch against the offsets; return the rows and the counts."
    order, counts = [], dict(rows=0, zero_rows=0, partial_rows=0)
    for b in loader:
        A, M = b["align"].numpy(), b["align_mask"].numpy()
        ls, lt = (b[v]["attention_mask"].sum(1).numpy() for v in ALIGN)
        assert A.shape == (len(b["index"]), b["student"]["input_ids"].shape[1], b["teacher"]["input_ids"].shape[1])
        for i, r in enumerate(b["index"].tolist()):
            s, t = real["offs"]["student"][r], real["offs"]["teacher"][r]
            ref, real_rows = reference_align(s, t)
            assert ref.shape == (ls[i], lt[i])
            np.testing.assert_allclose(A[i, :ls[i], :lt[i]], ref, atol=1e-6, err_msg=str(r))
            assert not A[i, ls[i]:].any() and not A[i, :, lt[i]:].any() and not M[i, ls[i]:].any()   # padding
            np.testing.assert_array_equal(M[i, :ls[i]], real_rows)
            np.testing.assert_allclose(A[i].sum(1)[M[i]], 1, atol=1e-5)                           # real rows: 1
            counts["rows"] += 1; counts["zero_rows"] += int((~real_rows).sum())
            counts["partial_rows"] += int(((ref > 0) & (ref < 1)).any(1).sum())
            if words: check_words(b, i, r, real)
        order.append(b["index"].numpy())
    return np.concatenate(order), counts


def check_words(b, i, r, real):
    "Row `i` of batch `b`: the words from both views' offsets, each view's pooling onto them, the word mask."
    s, t = real["offs"]["student"][r], real["offs"]["teacher"][r]
    words = reference_words(len(real["comments"][r]), s, t)
    wm = b["word_mask"][i].numpy()
    for v, (o, special) in (("student", s), ("teacher", t)):
        P = b["words"][v][i].numpy()
        ov = np.maximum(np.minimum(words[:, None, 1], o[None, :, 1]) - np.maximum(words[:, None, 0], o[None, :, 0]), 0)
        ov[:, special] = 0
        total = ov.sum(1, keepdims=True)
        both = wm[:len(words)]
        np.testing.assert_allclose(P[:len(words), :len(o)][both], (ov / np.maximum(total, 1))[both], atol=1e-6)
        assert not P[len(words):].any() and not P[~wm].any()
    covered = [reference_align((words, np.zeros(len(words), bool)), x)[1] for x in (s, t)]
    np.testing.assert_array_equal(wm[:len(words)], covered[0] & covered[1])


@pytest.mark.parametrize("num_workers", [0, 2])
def test_align_every_batch(real, num_workers):
    "Training and validation epochs: every batch's alignment as the tokenizers' offsets give it; all rows once."
    train, val = create_data_loaders(real["views"], real["train_idx"], real["val_idx"], batch_size=32,
                                     num_workers=num_workers, align=ALIGN)
    order, counts = check_align_epoch(train, real)
    assert np.array_equal(np.sort(order), np.sort(real["train_idx"]))
    assert counts["zero_rows"] > 0 and counts["partial_rows"] > 0   # truncation and shared tokens both happen
    order, _ = check_align_epoch(val, real)
    assert np.array_equal(order, real["val_idx"])


def test_align_words(real):
    "The word pooling of both views on the validation rows (workers 2: built in the workers)."
    val = create_data_loaders(real["views"], real["train_idx"], real["val_idx"], batch_size=64, num_workers=2,
                              align=ALIGN, align_words=True)[1]
    order, _ = check_align_epoch(val, real, words=True)
    assert np.array_equal(order, real["val_idx"])


def test_spans_are_the_tokenizers_offsets(real):
    "Every row's stored spans are its tokenizer's offsets (the added special tokens -1), at one byte a token."
    for v, td in real["views"].items():
        assert td.cache_info["status"] == "miss" and isinstance(td.spans.codes, np.memmap)   # mapped from the entry
        for r in range(len(td)):
            o, special = real["offs"][v][r]
            expected = np.where(special[:, None], -1, o)
            np.testing.assert_array_equal(td.row_spans(r), expected, err_msg=f"{v} {r}")
        assert td.spans.codes.nbytes == len(td.ids)
        assert td.manifest["spans"] == {"packing": "gap*32+length uint8", "exceptions": len(td.spans.exceptions)}


def test_cache_and_spans(real, tmp_path):
    "A warm hit maps the spans as built; data without spans (from_lists) is refused for alignment, saying why."
    comments, labels = real["comments"], real["labels"]
    tok = real["toks"]["teacher"]
    cold = get_or_create_tokenized_dataset(comments, labels, tok, 48, tmp_path, verbose=False)
    warm = get_or_create_tokenized_dataset(comments, labels, tok, 48, tmp_path, verbose=False)
    assert warm.cache_info["status"] == "hit"
    built = tokenize_to_data(comments, labels, tok, 48).spans
    for a, b in zip(warm.spans, built): np.testing.assert_array_equal(a, b)
    assert isinstance(warm.spans.codes, np.memmap)
    assert (tmp_path / Path(warm.manifest["path"]).name / "span_codes.npy").exists()
    bare = TokenizedData.from_lists([list(warm.row(i)) for i in range(len(warm))], warm.labels, warm.pad_token_id, 48)
    with pytest.raises(BanglaDataError, match="has no character spans"):
        create_data_loaders({"teacher": bare, "student": real["views"]["student"]}, real["train_idx"],
                            real["val_idx"], align=ALIGN)


def test_losses_equal_a_token_loop(real):
    "On a real aligned batch, the hidden-state and attention losses equal direct loops over its real tokens."
    b = next(iter(create_data_loaders(real["views"], real["train_idx"], real["val_idx"], batch_size=8, num_workers=0,
                                      align=ALIGN, shuffle=False)[1]))
    A, M = b["align"].double(), b["align_mask"]
    B, Ts, Tt = A.shape
    g = torch.Generator().manual_seed(0)
    hs, ht = torch.randn(B, Ts, 6, generator=g, dtype=torch.float64), torch.randn(B, Tt, 6, generator=g, dtype=torch.float64)
    sa = torch.softmax(torch.randn(B, 2, Ts, Ts, generator=g, dtype=torch.float64), -1)
    ta = torch.softmax(torch.randn(B, 2, Tt, Tt, generator=g, dtype=torch.float64), -1)
    num = den = 0.0
    anum = aden = 0.0
    for i in range(B):
        for s in range(Ts):
            if not M[i, s]: continue
            target = sum(A[i, s, t] * ht[i, t] for t in range(Tt) if A[i, s, t] > 0)
            num += float(((hs[i, s] - target) ** 2).mean()); den += 1
            for k in range(Ts):
                if not M[i, k]: continue
                for h in range(2):
                    at = float(A[i, s] @ ta[i, h] @ A[i, k])
                    anum += (float(sa[i, h, s, k]) - at) ** 2; aden += 1
    assert abs(hidden_state_loss(hs, ht, A, M).item() - num / den) < 1e-6
    assert abs(attention_loss(sa, ta, A, M).item() - anum / aden) < 1e-6


def test_torchrun_two_ranks_align(tmp_path):
    "Two ranks: each checks every batch of its shard against the tokenizers' offsets; the shards cover the fold."
    res = torchrun_ranks(HERE / "ddp_align_script.py", tmp_path, 3001)
    r0, r1 = res["ranks"]
    assert (r0["rank"], r1["rank"], r0["world"]) == (0, 1, 2)
    for r in (r0, r1):
        assert r["mismatches"] == 0 and r["checked"] > 0, r["mismatch_examples"]
        assert r["row_sums_off"] == 0 and r["padding_nonzero"] == 0
    train = np.array(res["train_idx"])
    a, b = np.array(r0["rows"]), np.array(r1["rows"])
    assert np.array_equal(np.union1d(a, b), train) and len(np.intersect1d(a, b)) <= 1


@pytest.mark.filterwarnings("ignore")
def test_prepared_fold_and_test_loader_pass_align_on(tmp_path):
    "`Prepared.fold(k, align=...)` and `test_loader(align=...)` hand `align` to the loaders (on the bundled sample)."
    from bangla_data.pipeline import prepare
    from bangla_data.sample import SAMPLE_PATH, sample_tokenizer
    p = prepare(data=SAMPLE_PATH, tokenizer={"teacher": sample_tokenizer(vocab_size=2000),
                                             "student": sample_tokenizer(vocab_size=300)},
                max_length={"teacher": 16, "student": 64}, cache_dir=tmp_path, test_size=0.2, verbose=False,
                report_unk=False)
    for loader in (p.fold(0, align=ALIGN, num_workers=0)[0], p.test_loader(align=ALIGN)):
        b = next(iter(loader))
        views = p.tokenized_views
        ref = char_align(views["student"].batch_spans(b["index"]), views["teacher"].batch_spans(b["index"]))
        np.testing.assert_array_equal(b["align"].numpy(), ref[0])
        assert b["align_mask"].any() and not b["align_mask"].all()       # the teacher's 16 tokens cut rows short
