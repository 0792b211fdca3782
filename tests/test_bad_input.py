"""Issue 7, bad input: messy files, bad labels and bad arguments.

Every case ends in one of three ways, and the test says which: a `BanglaDataError` whose message names the file,
column, row or value (never a traceback from inside pandas, numpy or the csv module); a documented warning; or a
correct result in which every row of the file is either kept or reported as dropped. `tests/README.md` lists the
cases; the ones already covered by `tests/test_loading.py` (missing path, directory, empty file, header only, cp1252,
duplicate column, BOM, 2/-1/0.5/yes/empty/NaN labels, label columns as a string or listed twice) are not repeated.
"""
import csv
import io
import warnings

import numpy as np
import pandas as pd
import pytest

from bangla_data import BanglaDataError, load_and_preprocess_data, read_table
from bangla_data.cache import get_or_create_tokenized_dataset
from bangla_data.sample import sample_tokenizer
from bangla_data.tokenize import tokenize_to_data
from bangla_data.kfold import LeakFreeKFold, assign_folds, prepare_kfold_splits
from bangla_data.loaders import create_data_loaders
from bangla_data.sample import SAMPLE_PATH
from conftest import BANGLABERT_DIR, MBERT_DIR


def _write(tmp_path, name, data, encoding='utf-8'):
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return p


def _load(src, labels=('bully',), **kw):
    "Load with warnings recorded; check that every row read is kept or reported as dropped. Returns (comments, y, info, warnings)."
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        c, y, info = load_and_preprocess_data(src, label_columns=list(labels), verbose=False, return_info=True, **kw)
    dropped = sum(len(v) for v in info.dropped.values())
    assert info.rows_kept == len(c) == len(y) and info.rows_kept + dropped == info.rows_read
    assert not any(isinstance(x.message, ResourceWarning) for x in w), [str(x.message) for x in w]  # files are closed
    return c, y, info, [str(x.message) for x in w]


def _csv_rows(path, encoding='utf-8-sig'):
    "Data rows counted by the csv module, independently of pandas and the library."
    with open(path, encoding=encoding, newline='') as f:
        csv.field_size_limit(2**31 - 1)
        return sum(1 for _ in csv.reader(f)) - 1


# ----------------------------------------------------------------------------------------------- files that load
ROWS = [('আমি ভালো আছি', 0), ('তুমি খারাপ', 1), ('সে, আর আমি', 0)]


def _csv_text(rows=ROWS, header='comment_text,bully', nl='\n'):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=nl)
    w.writerow(header.split(','))
    w.writerows(rows)
    return buf.getvalue()


@pytest.mark.parametrize('encoding', ['utf-16', 'utf-16-le', 'utf-16-be', 'utf-8-sig'])
def test_utf16_and_bom_files_load(tmp_path, encoding):
    p = _write(tmp_path, 'u.csv', _csv_text(), encoding)
    c, y, info, _ = _load(p)
    assert c == [r[0] for r in ROWS] and y[:, 0].tolist() == [r[1] for r in ROWS]
    assert info.rows_read == 3


def test_cp1252_file_errors_with_a_hint_and_loads_with_the_encoding(tmp_path):
    p = _write(tmp_path, 'cp.csv', 'comment_text,bully\n"café, olé",1\n', 'cp1252')
    with pytest.raises(BanglaDataError, match=r"cp\.csv: not valid UTF-8.*encoding='cp1252'"):
        load_and_preprocess_data(p, label_columns=['bully'], verbose=False)
    c, y, _, _ = _load(p, encoding='cp1252', clean_options={'use_normalizer': False})
    assert c == ['café, olé'] and y.tolist() == [[1.0]]
    assert _load(p, encoding='cp1252')[0] == ['cafe, ole']     # BanglaBERT's normalizer drops Latin accents


def test_a_wrong_encoding_argument_is_the_librarys_error(tmp_path):
    p = _write(tmp_path, 'u.csv', _csv_text(), 'utf-8')
    with pytest.raises(BanglaDataError, match='u.csv'):
        load_and_preprocess_data(p, label_columns=['bully'], verbose=False, encoding='utf-16')
    with pytest.raises(BanglaDataError, match='u.csv'):
        load_and_preprocess_data(p, label_columns=['bully'], verbose=False, encoding='no-such-codec')


@pytest.mark.parametrize('nl', ['\r\n', '\r', '\n'], ids=['CRLF', 'CR', 'LF'])
def test_line_endings(tmp_path, nl):
    p = _write(tmp_path, 'le.csv', _csv_text(nl=nl))
    c, y, info, _ = _load(p)
    assert c == [r[0] for r in ROWS] and y[:, 0].tolist() == [0, 1, 0]
    assert list(read_table(p).columns) == ['comment_text', 'bully']     # no '\r' left on the last column name
    assert not any('\r' in t for t in c)


def test_quoted_fields_with_newlines_commas_and_quotes(tmp_path):
    rows = [('প্রথম লাইন\nদ্বিতীয়, "উদ্ধৃতি" লাইন', 1), ('a,b,,c', 0), ('"', 1), ('\r\nশেষে', 0)]
    p = _write(tmp_path, 'q.csv', _csv_text(rows, nl='\r\n'))
    assert _csv_rows(p) == 4
    raw, _, _, _ = _load(p, clean_text=False)
    assert raw == [r[0] for r in rows]                                   # exactly as written, newlines included
    c, y, _, _ = _load(p)
    assert c == ['প্রথম লাইন দ্বিতীয়, "উদ্ধৃতি" লাইন', 'a,b,,c', '"', 'শেষে'] and y[:, 0].tolist() == [1, 0, 1, 0]


def test_column_names_with_trailing_spaces_and_tabs(tmp_path):
    p = _write(tmp_path, 's.tsv', ' comment_text \t bully\t\t\nক\t1\t\t\nখ\t0\t\t\n'.replace('\t\t\t', '\t\t'))
    c, y, _, _ = _load(p, text_column='comment_text  ')                # the argument may carry spaces too
    assert c == ['ক', 'খ'] and y[:, 0].tolist() == [1, 0]


@pytest.mark.parametrize('kind', ['differ only by spaces', 'xlsx', 'DataFrame', 'TSV'])
def test_duplicate_column_names(tmp_path, kind):
    if kind == 'differ only by spaces': src = _write(tmp_path, 'd.csv', 'comment_text,bully, bully \nক,0,1\n')
    elif kind == 'TSV': src = _write(tmp_path, 'd.tsv', 'comment_text\tbully\tbully\nক\t0\t1\n')
    elif kind == 'xlsx':
        src = tmp_path / 'd.xlsx'
        pd.DataFrame([['ক', 0, 1]], columns=['comment_text', 'bully', 'bully']).to_excel(src, index=False)
    else: src = pd.DataFrame([['ক', 0, 1]], columns=['comment_text', 'bully', 'bully '])
    with pytest.raises(BanglaDataError, match=r"duplicate column name\(s\) \['bully'\]"):
        load_and_preprocess_data(src, label_columns=['bully'], verbose=False)


def test_xlsx_with_extra_unnamed_columns(tmp_path):
    import openpyxl
    df = pd.DataFrame({'comment_text': ['ক খ', 'গ', 'NA', 'null'], 'bully': [1, 0, 1, 0]})
    df.to_excel(tmp_path / 'x.xlsx')                                     # index written as an unnamed first column
    wb = openpyxl.load_workbook(tmp_path / 'x.xlsx')
    ws = wb.active
    ws['E2'] = 'a note in a column without a header'                     # unnamed column with data
    ws['G1'] = None; ws['G3'] = None                                     # an empty one further right
    wb.save(tmp_path / 'x.xlsx')
    c, y, info, w = _load(tmp_path / 'x.xlsx')
    assert c == ['ক খ', 'গ', 'NA', 'null'] and y[:, 0].tolist() == [1, 0, 1, 0]   # 'NA' and 'null' are comments, not missing
    assert info.rows_read == 4 and w == []


def test_xlsx_empty_cells_are_reported_not_lost(tmp_path):
    pd.DataFrame({'comment_text': ['ক', None, 'খ'], 'bully': [1, 0, None]}).to_excel(tmp_path / 'e.xlsx', index=False)
    with pytest.raises(BanglaDataError, match=r"'bully' must hold 0 or 1, but has <empty> at row\(s\) 4"):
        load_and_preprocess_data(tmp_path / 'e.xlsx', label_columns=['bully'], verbose=False)
    pd.DataFrame({'comment_text': ['ক', None, 'খ'], 'bully': [1, 0, 0]}).to_excel(tmp_path / 'e.xlsx', index=False)
    c, _, info, w = _load(tmp_path / 'e.xlsx')
    assert c == ['ক', 'খ'] and info.dropped['missing or empty text'] == [3] and any('dropped 1 of 3' in m for m in w)


@pytest.mark.parametrize('fmt', ['csv', 'xlsx', 'jsonl', 'parquet', 'DataFrame'])
def test_a_text_cell_that_is_a_number(tmp_path, fmt):
    if fmt == 'csv':
        src = _write(tmp_path, 'n.csv', 'comment_text,bully\n12345,1\n007,0\n1.50,0\n1e3,1\n')
        expect = ['12345', '007', '1.50', '1e3']                             # CSV cells are text: kept exactly as written
    else:
        df = pd.DataFrame({'comment_text': [12345, 7, 1.5, 1000.0], 'bully': [1, 0, 0, 1]}, dtype=object)
        expect = ['12345', '7', '1.5', '1000']                               # never '12345.0'
        if fmt == 'DataFrame': src = df
        elif fmt == 'xlsx': src = tmp_path / 'n.xlsx'; df.to_excel(src, index=False)
        elif fmt == 'jsonl': src = tmp_path / 'n.jsonl'; df.to_json(src, orient='records', lines=True)
        else: src = tmp_path / 'n.parquet'; df.astype({'comment_text': str, 'bully': int}).to_parquet(src); expect[2:] = ['1.5', '1000.0']
    c, y, _, _ = _load(src)
    assert c == expect and y[:, 0].tolist() == [1, 0, 0, 1]


def test_a_5mb_single_comment(tmp_path):
    big = ('আমি তোমাকে বলছি, "শোনো"\n' * 200_000)[: 5 * 1024 * 1024 // 2]
    p = tmp_path / 'big.csv'
    with open(p, 'w', encoding='utf-8', newline='') as f:
        csv.writer(f).writerows([['comment_text', 'bully'], ['ছোট', 0], [big, 1], ['শেষ', 0]])
    assert p.stat().st_size > 5_000_000
    with pytest.raises(BanglaDataError, match=r"row 3 \(header = row 1\) holds 2,621,440 characters, over max_text_chars=1,000,000"):
        _load(p)                                             # over the default limit (issue 23): refused, by row
    raw, y, _, _ = _load(p, clean_text=False, max_text_chars=3_000_000)
    assert raw[1] == big and len(raw) == 3 and y[:, 0].tolist() == [0, 1, 0]
    c, _, _, _ = _load(p, max_text_chars=0)                  # 0: no limit
    assert c[1] == ' '.join(big.split()) and c[0] == 'ছোট'


# ----------------------------------------------------------------------------------------------- files that must not load
@pytest.mark.parametrize('text,match', [
    ('comment_text,bully\nক, খ,0\nগ, ঘ,1\n', 'line 2 has 3 fields but the header has 2 columns'),   # every row: pandas made an index
    ('comment_text,bully\nক,0\nগ, ঘ,1\n', 'line 3 has 3 fields'),
    ('comment_text,bully\nক, খ,0\nগ,1\n', 'line 2 has 3 fields'),
    ('comment_text,bully\n"' + 'ক' * 300_000 + '",0\nগ, ঘ,1\n', 'line 3 has 3 fields'),           # a field above csv's limit
    ('comment_text,bully\n"ক,0\nখ,1\n', 'could not be parsed'),                                      # a quote never closed
    ('comment_text,bully\nক\nখ,0\n', r"'bully' must hold 0 or 1, but has <empty> at row\(s\) 2"),   # a short row
    (',bully\nক,0\n', r"text column 'comment_text' not found.*The file has columns \['Unnamed: 0', 'bully'\]"),
], ids=['unquoted comma in every row', 'unquoted comma in one row', 'unquoted comma in the first row', 'ragged with a 300k field',
        'unclosed quote', 'short row', 'empty header name'])
def test_malformed_csv(tmp_path, text, match):
    p = _write(tmp_path, 'bad.csv', text)
    with pytest.raises(BanglaDataError, match=match) as e:
        load_and_preprocess_data(p, label_columns=['bully'], verbose=False)
    assert 'bad.csv' in str(e.value)


def test_unquoted_tab_in_tsv(tmp_path):
    p = _write(tmp_path, 'bad.tsv', 'comment_text\tbully\nক\tখ\t0\n')
    with pytest.raises(BanglaDataError, match='a tab inside a comment'):
        load_and_preprocess_data(p, label_columns=['bully'], verbose=False)


# ----------------------------------------------------------------------------------------------- labels
def test_all_zero_and_all_one_label_columns_warn_and_load(tmp_path):
    p = _write(tmp_path, 'flat.csv', 'comment_text,bully,threat,spam\nক,0,1,0\nখ,0,1,1\nগ,0,1,0\n')
    c, y, _, w = _load(p, labels=['bully', 'threat', 'spam'])
    assert y.tolist() == [[0, 1, 0], [0, 1, 1], [0, 1, 0]]
    assert any("['bully'] have no positive row (all 0)" in m and 'flat.csv' in m for m in w)
    assert any("['threat'] have only positive rows (all 1)" in m for m in w)
    assert not any("'spam'" in m for m in w)


def test_a_label_that_becomes_constant_after_dropping_rows_warns(tmp_path):
    p = _write(tmp_path, 'f.csv', 'comment_text,bully\nক,0\n,1\nখ,0\n')
    _, y, _, w = _load(p)
    assert y[:, 0].tolist() == [0, 0] and any('no positive row' in m for m in w)


@pytest.mark.parametrize('column,shown', [
    ([0, 2], "has 2 at row(s) 3"), ([-1, 1], "has -1 at row(s) 2"), ([0.5, 1.0], "has 0.5 at row(s) 2"),
    (['yes', 'no'], "'yes', 'no' at row(s) 2, 3"), ([None, 1], "NaN at row(s) 2"), (pd.Series([None, 1], dtype=object), "<empty> at row(s) 2"), (pd.array([0, None], dtype='Int64'), "<NA> at row(s) 3"),
    ([float('inf'), 0], "inf at row(s) 2"), (['1.00', '0'], "'1.00' at row(s) 2"), (['১', '0'], "'১' at row(s) 2"),
], ids=['2', '-1', '0.5', 'yes/no', 'None in floats', 'None in objects', 'pd.NA', 'inf', '1.00', 'Bangla digit one'])
def test_bad_label_values_in_a_dataframe(column, shown):
    df = pd.DataFrame({'comment_text': ['ক', 'খ'], 'bully': column})
    with pytest.raises(BanglaDataError) as e:
        load_and_preprocess_data(df, label_columns=['bully'], verbose=False)
    assert "'bully' must hold 0 or 1" in str(e.value) and shown in str(e.value)


def test_accepted_label_spellings_with_spaces_and_case(tmp_path):
    p = _write(tmp_path, 'ok.csv', 'comment_text,a,b\nক, 1 ,TRUE\nখ,0 ,False\nগ,-0,0.0\n')
    _, y, _, _ = _load(p, labels=['a', 'b'])
    assert y.tolist() == [[1, 1], [0, 0], [0, 0]] and y.dtype == np.float32


@pytest.mark.parametrize('label_columns,match', [
    (['bully', 'bully'], 'more than once'), ([], 'is empty'),
    (None, 'must be a list'), ([''], 'non-empty strings'), ([1], 'non-empty strings'), (['comment_text'], 'both as the text column'),
    (['Bully'], r"label column 'Bully' not found.*Did you mean 'bully'\?"),
])
def test_label_column_arguments(label_columns, match):
    "Each wrong `label_columns` is refused saying what is wrong (a string is one label: see below)."
    df = pd.DataFrame({'comment_text': ['ক'], 'bully': [1]})
    with pytest.raises(BanglaDataError, match=match):
        load_and_preprocess_data(df, label_columns=label_columns, verbose=False)


@pytest.mark.parametrize('kw,match', [(dict(missing_text='skip'), "missing_text must be 'drop', 'error' or 'keep'"),
                                      (dict(text_column='text'), "text column 'text' not found")])
def test_other_load_arguments(kw, match):
    with pytest.raises(BanglaDataError, match=match):
        load_and_preprocess_data(pd.DataFrame({'comment_text': ['ক'], 'bully': [1]}), label_columns=['bully'], verbose=False, **kw)


# ----------------------------------------------------------------------------------------------- arguments of the later steps
@pytest.fixture(scope='module')
def sample():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        c, y = load_and_preprocess_data(SAMPLE_PATH, verbose=False)
    return c, y, sample_tokenizer()


@pytest.fixture(scope='module')
def sample_data(sample, tmp_path_factory):
    c, y, tok = sample
    return get_or_create_tokenized_dataset(c, y, tok, 64, tmp_path_factory.mktemp('cache'), verbose=False)


@pytest.mark.parametrize('num_folds,match', [(0, 'at least 2, got 0'), (1, 'at least 2, got 1'), (-3, 'at least 2'),
                                             (10**6, 'there are only'), (2.0, 'whole number'), (True, 'whole number'), ('5', 'whole number')])
def test_num_folds(sample, num_folds, match):
    c, y, _ = sample
    with pytest.raises(BanglaDataError, match=match):
        prepare_kfold_splits(c, y, num_folds=num_folds)
    with pytest.raises(BanglaDataError):
        list(LeakFreeKFold(n_splits=num_folds).split(c, y))


def test_num_folds_more_than_distinct_texts():
    c = ['ক', 'ক', 'খ', 'খ', 'গ', 'গ']
    y = np.array([[0], [0], [1], [1], [0], [1]])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(BanglaDataError, match='only 3 distinct texts'):
            assign_folds(c, y, num_folds=4)
        assert len(prepare_kfold_splits(c, y, num_folds=4, group_duplicates=False)) == 4


@pytest.mark.parametrize('value', ['stratified', 'MultiLabel', None, ''])
def test_unknown_stratification_type(sample, value):
    c, y, _ = sample
    with pytest.raises(BanglaDataError, match=r"stratification_type must be 'multiclass' or 'multilabel'"):
        prepare_kfold_splits(c, y, stratification_type=value)


@pytest.mark.parametrize('max_length', [0, -1, 2.5, '128'])
def test_max_length_not_a_positive_integer(sample, tmp_path, max_length):
    c, y, tok = sample
    with pytest.raises(BanglaDataError, match='max_length must be a positive integer'):
        get_or_create_tokenized_dataset(c, y, tok, max_length, tmp_path, verbose=False)
    assert not list(tmp_path.glob('*_tokenized'))


def test_max_length_none(sample, tmp_path):
    c, y, tok = sample
    with pytest.raises(BanglaDataError, match='max_length'):
        get_or_create_tokenized_dataset(c, y, tok, None, tmp_path, verbose=False)


def test_max_length_below_the_special_tokens(sample, tmp_path):
    c, y, tok = sample
    with pytest.raises(BanglaDataError) as e:
        get_or_create_tokenized_dataset(c, y, tok, 1, tmp_path, verbose=False)
    assert 'truncation is off' not in str(e.value)


def test_max_length_above_the_tokenizer_limit_in_the_cache_api(sample, tmp_path):
    c, y, tok = sample
    assert tok.model_max_length == 512
    with pytest.raises(BanglaDataError, match='512'):
        get_or_create_tokenized_dataset(c, y, tok, 4096, tmp_path, verbose=False)


@pytest.mark.shared
def test_max_length_above_the_tokenizer_limit_in_prepare(tmp_path):
    from bangla_data.pipeline import prepare
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(BanglaDataError, match='above the tokenizer.s limit of 512'):
            prepare(tokenizer=str(MBERT_DIR), max_length=1024, cache_dir=tmp_path, verbose=False, report_unk=False)
        with pytest.raises(BanglaDataError, match='at least 2'):
            prepare(tokenizer=str(MBERT_DIR), max_length=0, cache_dir=tmp_path, verbose=False, report_unk=False)
    assert not list(tmp_path.glob('*_tokenized'))


@pytest.mark.shared
def test_max_length_above_banglabert_positions_in_prepare(tmp_path):
    from bangla_data.pipeline import prepare
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(BanglaDataError, match='512'):
            prepare(tokenizer=str(BANGLABERT_DIR), max_length=1024, cache_dir=tmp_path, verbose=False, report_unk=False)


@pytest.fixture(scope='module')
def split(sample):
    c, y, _ = sample
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return prepare_kfold_splits(c, y, 5)[0]


@pytest.mark.parametrize('batch_size', [0, -1])
def test_batch_size_zero_or_negative(split, sample_data, batch_size):
    tr, va = split
    with pytest.raises(BanglaDataError, match=f'batch_size must be at least 1, got {batch_size}'):
        create_data_loaders(sample_data, tr, va, batch_size=batch_size, num_workers=0)


@pytest.mark.parametrize('kw', [dict(batch_size=8, val_batch_size=0), dict(batch_size=2.5)], ids=['val_batch_size=0', 'batch_size=2.5'])
def test_batch_size_other_bad_values(split, sample_data, kw):
    tr, va = split
    with pytest.raises(BanglaDataError, match='batch_size'):
        create_data_loaders(sample_data, tr, va, num_workers=0, **kw)


def test_tokenizer_without_pad_token(sample, tmp_path):
    import copy
    c, y, tok = sample
    nopad = copy.deepcopy(tok)
    nopad.pad_token = None
    assert nopad.pad_token_id is None
    with pytest.raises(BanglaDataError, match=r'has no pad token; set one first'):
        get_or_create_tokenized_dataset(c, y, nopad, 64, tmp_path, verbose=False)
    with pytest.raises(BanglaDataError, match='no pad token'):
        tokenize_to_data(c, y, nopad, 64)
    assert not list(tmp_path.glob('*_tokenized'))
    from bangla_data.pipeline import prepare
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(BanglaDataError, match='no pad token'):
            prepare(tokenizer=nopad, cache_dir=tmp_path, verbose=False, report_unk=False)


def test_labels_and_comments_of_different_lengths(sample, tmp_path):
    c, y, tok = sample
    with pytest.raises(BanglaDataError):
        get_or_create_tokenized_dataset(c, y[:-1], tok, 64, tmp_path, verbose=False)
    with pytest.raises(BanglaDataError, match='rows but there are'):
        prepare_kfold_splits(c, y[:-1])


def test_a_string_label_column_is_one_label():
    "label_columns='bully' is the column 'bully', never its letters (issue 21)."
    df = pd.DataFrame({'comment_text': ['ক', 'খ'], 'bully': [1, 0]})
    _, y, info = load_and_preprocess_data(df, label_columns='bully', verbose=False, return_info=True)
    assert y.tolist() == [[1], [0]] and list(info.label_columns) == ['bully']
