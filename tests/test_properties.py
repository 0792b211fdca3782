"""Issue 7, property-based tests (hypothesis).

`clean_bangla_text` never raises on any `str`, is idempotent, returns NFC with no URL left and no surrounding or
repeated whitespace. Loading a random small DataFrame (or the same table written as CSV in any of the encodings and
line endings the reader accepts) either gives exactly the result an independent oracle predicts, with every row kept
or reported as dropped, or raises `BanglaDataError` — never another exception, never a silent coercion.

Examples are derandomized so CI is reproducible; `HYPOTHESIS_PROFILE=thorough pytest tests/test_properties.py` runs
many more, randomly.
"""
import csv
import io
import math
import os
import re
import tempfile
import unicodedata
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, example, given, settings, strategies as st

from bangla_data import BanglaDataError, load_and_preprocess_data
from bangla_data.cleaning import clean_bangla_text, clean_bangla_texts

settings.register_profile('ci', max_examples=300, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile('thorough', max_examples=20_000, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get('HYPOTHESIS_PROFILE', 'ci'))

# ----------------------------------------------------------------------------------------------- strategies
# Pieces that interact in cleaning: Bangla letters and signs in both encodings, the invisible characters cleaning
# removes (or keeps between Bangla letters), Unicode spaces, emoji, Latin, and fragments that can assemble a URL.
PIECES = (list('অআকখগঘচজটডতদনপবমযরলশসহয়ড়ঢ়ািীুূৃেৈোৌ্ংঃঁ়ৗ।০১২') + ['\u09c7\u09be', '\u09af\u09bc', '\u09a1\u09bc']
          + ['\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u00ad', '\u180e', '\u200e', '\u200f']
          + [' ', '\n', '\t', '\r', '\u00a0', '\u2003', '\u3000', '\x1c', '\x85']
          + ['😀', '👍🏽', '❤️', '\u20e3', '🇧', '🇩', '৷', '৳', '★', '“', '’', '…', '&amp;', 'a', 'Z', 'é', '\u0301']
          + ['http', 'https', 'HTTP', 'ht', 'tp', 's', '://', ':', '/', 'www', 'WWW', 'w', '.', 'ww.', 'x.y', '/a?b=1'])
bangla_text = st.lists(st.sampled_from(PIECES), max_size=30).map(''.join)
any_text = st.one_of(st.text(), bangla_text, st.lists(st.one_of(st.text(max_size=3), st.sampled_from(PIECES)), max_size=20).map(''.join))
options = st.fixed_dictionaries({}, optional=dict(remove_urls=st.booleans(), remove_latin=st.booleans(),
                                                  remove_emoji=st.booleans(), use_normalizer=st.booleans(),
                                                  split_symbols=st.booleans(),
                                                  emoji=st.sampled_from(['keep', 'remove', 'name', 'placeholder'])))
URL = re.compile(r'(?:https?://|www\.)\S', re.IGNORECASE)


# ----------------------------------------------------------------------------------------------- clean_bangla_text
@given(any_text, options)
@example('ht\u200btp://evil.example/x', {})                # an invisible character hiding a link (found by this test)
@example('w\u00adww.evil.example', {})
@example('http\u200c://a.b', {})
@example('\u09c7\u200b\u09be', {})                          # removing the invisible character makes a new composition
def test_clean_bangla_text_properties(text, opts):
    out = clean_bangla_text(text, **opts)                    # never raises
    assert isinstance(out, str)
    assert clean_bangla_text(out, **opts) == out             # idempotent
    assert unicodedata.is_normalized('NFC', out)             # NFC
    assert out == ' '.join(out.split())                      # no surrounding, repeated or non-space whitespace
    if opts.get('remove_urls', True): assert not URL.search(out), out
    if opts.get('remove_latin'): assert not re.search('[A-Za-z]', out)
    assert not re.search('[\u200b\u2060\ufeff\u00ad\u180e\u200e\u200f]', out)


@given(st.lists(any_text, max_size=10), options)
def test_clean_bangla_texts_is_the_map(texts, opts):
    assert clean_bangla_texts(texts, **opts) == [clean_bangla_text(t, **opts) for t in texts]


@given(bangla_text)
def test_cleaning_keeps_all_bangla_letters(text):
    "Cleaning removes only what it documents: every Bangla letter of the NFC text survives, in order."
    # the normalizer's two letter rules: ব + nukta is র, অ + া is আ (NFC keeps both apart)
    letters = lambda s: re.sub('[^\u0985-\u09b9\u09ce\u09dc-\u09df]', '',
                               unicodedata.normalize('NFC', re.sub('[\u200b\u2060\ufeff\u00ad\u180e\u200e\u200f]', '', s))
                               .replace('\u09ac\u09bc', '\u09b0').replace('\u0985\u09be', '\u0986'))
    assume(not URL.search(clean_bangla_text(text, remove_urls=False, split_symbols=False)))  # a URL may swallow letters
    assert letters(clean_bangla_text(text)) == letters(text)


# ----------------------------------------------------------------------------------------------- loading DataFrames
ACCEPTED = {0: 0.0, 1: 1.0, 0.0: 0.0, 1.0: 1.0, True: 1.0, False: 0.0, '0': 0.0, '1': 1.0, '1.0': 1.0, '0.0': 0.0, 'true': 1.0,
            'TRUE': 1.0, 'False': 0.0, ' 1 ': 1.0, '-0': 0.0}
REJECTED = [2, -1, 0.5, 'yes', '', ' ', None, math.nan, 'nan', '১', '1.00', '০', 'o']
label_cell = st.one_of(st.sampled_from(list(ACCEPTED.items())), st.sampled_from(REJECTED).map(lambda v: (v, None)))
text_cell = st.one_of(bangla_text, st.text(max_size=8), st.none(), st.just(math.nan), st.integers(-10**6, 10**6),
                      st.floats(allow_infinity=False, width=32), st.booleans())


def _oracle_text(v):
    "The text the loader must produce for a cell, or None for a missing one (independently of the library's helpers)."
    if v is None or (isinstance(v, float) and math.isnan(v)): return None
    if isinstance(v, bool): return str(v)
    if isinstance(v, float): return f'{int(v)}' if v == int(v) else repr(v)
    return str(v)


@st.composite
def tables(draw):
    n = draw(st.integers(0, 6))
    k = draw(st.integers(1, 3))
    names = [f'l{j}' for j in range(k)]
    texts = draw(st.lists(text_cell, min_size=n, max_size=n))
    cols = {nm: draw(st.lists(label_cell, min_size=n, max_size=n)) for nm in names}
    return texts, names, cols


def _expected(texts, names, cols, clean):
    "(error row, error column) or (kept texts, kept labels, dropped file rows)."
    bad = [(nm, i) for nm in names for i, (_, val) in enumerate(cols[nm]) if val is None]
    if bad: return 'error', bad[0]
    kept, y, dropped = [], [], []
    for i, v in enumerate(texts):
        t = _oracle_text(v)
        t = clean_bangla_text(t) if clean and t is not None else t
        if t is None or not t.strip(): dropped.append(i + 2); continue
        kept.append(t); y.append([cols[nm][i][1] for nm in names])
    return 'ok', (kept, np.array(y, np.float32).reshape(len(kept), len(names)), dropped)


def _check(src, texts, names, cols, clean, **kw):
    exp = _expected(texts, names, cols, clean)
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter('always')
            c, y, info = load_and_preprocess_data(src, text_column='text', label_columns=names, clean_text=clean, verbose=False,
                                                  return_info=True, **kw)
    except BanglaDataError as e:
        msg = str(e)
        if not texts: assert 'no data rows' in msg; return
        assert exp[0] == 'error', f'unexpected error {msg!r}; expected {exp}'
        nm, i = exp[1]
        assert f"label column {nm!r}" in msg and f'row(s) {i + 2}' in msg, (msg, exp)
        return
    assert texts and exp[0] == 'ok', f'loaded although {exp} was expected'
    kept, ey, dropped = exp[1]
    assert c == kept
    np.testing.assert_array_equal(y, ey)
    assert y.dtype == np.float32 and y.shape == (len(c), len(names))
    assert sorted(sum(info.dropped.values(), [])) == dropped            # every missing row reported, by its file row
    assert info.rows_read == len(texts) and info.row_numbers.tolist() == [r for r in range(2, len(texts) + 2) if r not in dropped]
    assert bool(dropped) == any('dropped' in str(x.message) for x in w)


@given(tables(), st.booleans())
def test_random_dataframes_load_correctly_or_raise(table, clean):
    texts, names, cols = table
    df = pd.DataFrame({'text': pd.Series(texts, dtype=object), **{nm: pd.Series([v for v, _ in cols[nm]], dtype=object) for nm in names}})
    _check(df, texts, names, cols, clean)


def _as_csv_cell(v):
    return '' if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


@given(tables(), st.sampled_from(['utf-8', 'utf-8-sig', 'utf-16']), st.sampled_from(['\n', '\r\n']), st.booleans(),
       st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
def test_random_tables_written_as_csv_load_like_their_text(table, encoding, newline, clean, quoting):
    "The same table as a CSV file: cells become text exactly as written (a number stays as written, not re-formatted)."
    texts, names, cols = table
    texts = [_as_csv_cell(v) for v in texts]                           # in a CSV every cell is text; empty = missing
    texts = [t.replace('\x00', '') for t in texts]                     # NUL cannot be stored in a CSV text cell
    spelled = lambda s: {'1': 1.0, '1.0': 1.0, 'true': 1.0, '0': 0.0, '0.0': 0.0, 'false': 0.0, '-0': 0.0}.get(s.strip().lower())
    cols = {nm: [(_as_csv_cell(v), spelled(_as_csv_cell(v))) for v, _ in cols[nm]] for nm in names}
    if quoting == csv.QUOTE_MINIMAL and newline == '\n':
        # Python's csv writer leaves a lone '\r' unquoted unless it is part of the line terminator, which makes the
        # file ambiguous for any reader (pandas' to_csv does the same); spreadsheet programs quote it.
        assume(not any('\r' in t for t in texts))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=newline, quoting=quoting)
    w.writerow(['text', *names])
    w.writerows([[t, *(cols[nm][i][0] for nm in names)] for i, t in enumerate(texts)])
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, 't.csv')
        with open(p, 'w', encoding=encoding, newline='') as f: f.write(buf.getvalue())
        _check(p, texts, names, cols, clean)
