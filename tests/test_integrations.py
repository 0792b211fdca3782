"""🤗 datasets in and out (issue 15, item 2): `prepare` and the loader take a `Dataset` (or a `DatasetDict` split) with
the same checks as a DataFrame, and `TokenizedData.to_hf_dataset()` round-trips exactly."""
import numpy as np
import pandas as pd
import pytest

datasets = pytest.importorskip('datasets')

from bangla_data.env import BanglaDataError
from bangla_data.loading import load_and_preprocess_data
from bangla_data.sample import SAMPLE_PATH
from bangla_data.tokenized import TokenizedData


@pytest.fixture(scope='module')
def sample_ds():
    return datasets.Dataset.from_pandas(pd.read_csv(SAMPLE_PATH, dtype=str, keep_default_na=False), preserve_index=False)


def test_a_dataset_loads_like_the_dataframe(sample_ds):
    a = load_and_preprocess_data(sample_ds, verbose=False)
    b = load_and_preprocess_data(pd.read_csv(SAMPLE_PATH, dtype=str, keep_default_na=False), verbose=False)
    assert a[0] == b[0] and np.array_equal(a[1], b[1])
    dd = datasets.DatasetDict(train=sample_ds, test=sample_ds.select(range(10)))
    c, y, info = load_and_preprocess_data(dd, split='test', verbose=False, return_info=True)
    assert len(c) == 10 and info.source == "DatasetDict['test']"
    with pytest.raises(BanglaDataError, match=r"pass split= one of \['test', 'train'\]"):
        load_and_preprocess_data(dd, verbose=False)
    bad = sample_ds.map(lambda r: {'bully': '2' if r['comment_text'] == sample_ds[3]['comment_text'] else r['bully']})
    with pytest.raises(BanglaDataError, match=r"Dataset: label column 'bully' must hold 0 or 1, but has '2' at row\(s\) 5"):
        load_and_preprocess_data(bad, verbose=False)


def test_prepare_takes_a_dataset(sample_ds, tmp_path):
    from bangla_data.pipeline import prepare
    from bangla_data.sample import sample_tokenizer
    p = prepare(sample_ds, tokenizer=sample_tokenizer(), cache_dir=tmp_path, num_folds=3, verbose=False)
    q = prepare(SAMPLE_PATH, tokenizer=sample_tokenizer(), cache_dir=tmp_path, num_folds=3, verbose=False)
    assert p.config['data'] == 'Dataset' and q.cache['status'] == 'hit'     # same content: the same cache entry
    assert all(np.array_equal(a, b) for s, t in zip(p.splits, q.splits) for a, b in zip(s, t))


@pytest.mark.shared
def test_to_hf_dataset_round_trip_on_real_data(banglabert, cyberbully, tmp_path):
    from bangla_data.cache import get_or_create_tokenized_dataset
    comments, labels = cyberbully
    td = get_or_create_tokenized_dataset(comments, labels, banglabert, 128, tmp_path, verbose=False)
    ds = td.to_hf_dataset()
    assert len(ds) == len(td) and ds.features['labels'].feature.dtype == 'float32'
    assert ds[17]['input_ids'] == banglabert(comments[17], truncation=True, max_length=128)['input_ids']
    back = TokenizedData.from_hf_dataset(ds, td.pad_token_id, td.max_length, td.special_token_ids, td.mask_token_id)
    assert np.array_equal(np.asarray(back.ids), np.asarray(td.ids)) and np.array_equal(back.offsets, td.offsets)
    assert np.array_equal(np.asarray(back.labels), np.asarray(td.labels))
    rows = np.random.default_rng(0).permutation(len(td))[:500]
    sub = td.to_hf_dataset(rows)
    assert sub['input_ids'] == [td.row(int(i)).tolist() for i in rows]
