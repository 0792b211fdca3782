"""A newcomer's first hour with the `bangla-data` command and the Python API (issue 12): one fold numbering,
errors that name the flag to pass, explicit label spellings, delimiter detection, plain messages for misnamed files,
small-fold warnings, short empty report lines, warnings in their place, and a README example that prints."""
import contextlib, io, json, os, re, subprocess, sys, warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bangla_data.cli import main
from bangla_data.env import BanglaDataError
from bangla_data.loading import load_and_preprocess_data

ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    "Run the command in-process: (status, stdout, stderr)."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): status = main(list(map(str, args)))
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope='module')
def tok_dir(tmp_path_factory):
    "The sample tokenizer saved to a directory, to pass as --tokenizer."
    from bangla_data.sample import sample_tokenizer
    d = tmp_path_factory.mktemp('tok')
    sample_tokenizer().save_pretrained(str(d))
    return d


def _own_csv(path, sep=',', labels=('abusive', 'political'), values=('1', '0'), n=40):
    texts = [f'মন্তব্য নম্বর {i}' for i in range(n)]
    rows = [sep.join(['id', 'text', *labels])] + [sep.join([str(i), t] + [values[(i + j) % 2] for j in range(len(labels))])
                                                 for i, t in enumerate(texts)]
    path.write_text('\n'.join(rows) + '\n', encoding='utf-8')
    return path


# ------------------------------------------------------------------------------------------- one fold numbering
def test_folds_are_numbered_from_0_everywhere(tmp_path):
    status, out, err = run('prepare', '--cache-dir', tmp_path, '--folds', '3', '--json')
    assert status == 0, err
    doc = json.loads(out)
    assert [r['fold'] for r in doc['folds']['table']] == [0, 1, 2]
    assert list(doc['class_weights']) == ['0', '1', '2']
    status, out, err = run('prepare', '--cache-dir', tmp_path, '--folds', '3')
    weights = out.split('Class weights per fold', 1)[1]
    assert re.search(r'^fold\b', weights.splitlines()[2]) and re.search(r'^0\s', weights.splitlines()[3]), weights
    from bangla_data.pipeline import prepare
    from bangla_data.sample import sample_tokenizer
    p = prepare(tokenizer=sample_tokenizer(), cache_dir=tmp_path, num_folds=3, verbose=False)
    assert list(p.weights_table().index) == [0, 1, 2] == list(p.fold_report.table.index)
    for k in range(3): p.fold(k)                                                 # and fold(k) takes the same numbers


# ------------------------------------------------------------------------------- errors that name what to pass
def test_default_columns_that_are_missing_name_the_flags(tmp_path):
    f = _own_csv(tmp_path / 'own.csv')
    status, out, err = run('load', f)
    assert status == 2 and "'comment_text'" in err and '--text-column' in err and "'text'" in err, err
    status, out, err = run('load', f, '--text-column', 'text')
    assert status == 2 and '--labels' in err, err
    for c in ('bully', 'sexual', 'religious', 'threat', 'spam'): assert repr(c) in err, err   # all of them, one message
    with pytest.raises(BanglaDataError, match=r"label_columns=\[\.\.\.\]") as e:
        load_and_preprocess_data(f, text_column='text', verbose=False)
    assert "'threat'" in str(e.value) and "'spam'" in str(e.value)
    assert run('load', f, '--text-column', 'text', '--labels', 'abusive,political', '--quiet')[0] == 0


def test_offline_own_data_without_tokenizer_says_which_flag(tmp_path, monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    f = _own_csv(tmp_path / 'own.csv')
    status, out, err = run('prepare', f, '--text-column', 'text', '--labels', 'abusive,political', '--cache-dir', tmp_path)
    assert status == 2 and '--tokenizer DIR' in err, err


# ------------------------------------------------------------------------------------- label spellings, explicit
def test_true_and_false_values(tmp_path, tok_dir):
    f = _own_csv(tmp_path / 'yn.csv', values=('yes', 'no'))
    status, out, err = run('load', f, '--text-column', 'text', '--labels', 'abusive,political')
    assert status == 2 and "'yes'" in err and '--true-values' in err and '--false-values' in err, err
    status, out, err = run('load', f, '--text-column', 'text', '--labels', 'abusive,political',
                           '--true-values', 'yes', '--false-values', 'no', '--json')
    assert status == 0, err
    assert json.loads(out)['labels']['positives'] == {'abusive': 20, 'political': 20}
    c, y = load_and_preprocess_data(f, text_column='text', label_columns=['abusive', 'political'],
                                    true_values=['yes'], false_values=['no'], verbose=False)
    assert y.dtype == np.float32 and y.sum() == 40
    with pytest.raises(BanglaDataError, match="'no' at row"):                  # a mapping, never a guess
        load_and_preprocess_data(f, text_column='text', label_columns=['abusive'], true_values=['yes'], verbose=False)
    with pytest.raises(BanglaDataError, match='both'):
        load_and_preprocess_data(f, text_column='text', label_columns=['abusive'], true_values=['yes', 'no'],
                                 false_values=['no'], verbose=False)
    status, out, err = run('prepare', f, '--text-column', 'text', '--labels', 'abusive,political', '--true-values', 'yes',
                           '--false-values', 'no', '--tokenizer', tok_dir, '--cache-dir', tmp_path, '--folds', '2', '--quiet')
    assert status == 0, err


# ---------------------------------------------------------------------------- delimiters and misnamed files
@pytest.mark.parametrize('sep', [';', '|', '\t'])
def test_other_delimiters_in_a_csv_are_detected_and_said(tmp_path, sep):
    f = _own_csv(tmp_path / 'semi.csv', sep=sep)
    status, out, err = run('load', f, '--text-column', 'text', '--labels', 'abusive,political')
    assert status == 0, err
    assert f'separated by {sep!r}' in out, out
    df_c, df_y, info = load_and_preprocess_data(f, text_column='text', label_columns=['abusive'], verbose=False,
                                                return_info=True)
    assert len(df_c) == 40 and info.delimiter == sep


def test_a_file_whose_content_does_not_match_its_name(tmp_path):
    csv = _own_csv(tmp_path / 'data.csv').read_bytes()
    (tmp_path / 'data.xlsx').write_bytes(csv)
    status, out, err = run('load', tmp_path / 'data.xlsx', '--text-column', 'text', '--labels', 'abusive')
    assert status == 2 and 'not an Excel' in err and 'text' in err and '.csv' in err, err
    assert 'engine' not in err
    (tmp_path / 'data.parquet').write_bytes(csv)
    with pytest.raises(BanglaDataError, match='not a Parquet file'):
        load_and_preprocess_data(tmp_path / 'data.parquet', text_column='text', label_columns=['abusive'], verbose=False)
    pd.DataFrame({'text': ['ক'], 'abusive': [1]}).to_excel(tmp_path / 'book.xlsx', index=False)
    (tmp_path / 'book.csv').write_bytes((tmp_path / 'book.xlsx').read_bytes())
    with pytest.raises(BanglaDataError, match=r'an Excel \.xlsx file'):
        load_and_preprocess_data(tmp_path / 'book.csv', text_column='text', label_columns=['abusive'], verbose=False)


# --------------------------------------------------------------------------------------------- small folds
def test_folds_too_small_to_balance_are_warned(tmp_path):
    from bangla_data.kfold import prepare_kfold_splits
    rng = np.random.default_rng(0)
    texts, y = [f't{i}' for i in range(26)], (rng.random((26, 2)) < .3).astype(np.float32)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        prepare_kfold_splits(texts, y, 5)
    msgs = [str(x.message) for x in w]
    assert any('cannot be balanced' in m and '26 rows' in m for m in msgs), msgs
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        prepare_kfold_splits([f't{i}' for i in range(2000)], (rng.random((2000, 2)) < .3).astype(np.float32), 5)
    assert not any('cannot be balanced' in str(x.message) for x in w)


# ------------------------------------------------------------------------------------- what the report says
def test_no_duplicates_is_one_short_line(tmp_path):
    f = _own_csv(tmp_path / 'own.csv')
    status, out, err = run('load', f, '--text-column', 'text', '--labels', 'abusive,political')
    line = next(l for l in out.splitlines() if l.strip().startswith('duplicates'))
    assert line.strip() == 'duplicates: none', line


def test_warnings_are_shown_in_their_section(tmp_path):
    f = tmp_path / 'gaps.csv'
    f.write_text('text,abusive\nক,1\n,0\nখ,0\nগ,1\n', encoding='utf-8')
    status, out, err = run('load', f, '--labels', 'abusive', '--text-column', 'text')
    assert status == 0 and 'dropped 1 of 4 rows' not in err, err                 # not printed above the report...
    loaded = out.index('📂 Loaded')
    assert out.index('⚠️') > loaded and 'dropped 1 of 4 rows' in out, out       # ...but inside it, under its heading
    status, out, err = run('prepare', '--cache-dir', tmp_path, '--folds', '3')
    assert 'share their text with rows that have other labels' not in err, err
    folds = out.index('🔀 Folds')
    assert out.index('share their text with rows that have other labels') > folds, out


def test_verbose_false_is_quiet_and_keeps_the_warnings(tmp_path, capsys):
    from bangla_data.pipeline import prepare
    from bangla_data.sample import sample_tokenizer
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        p = prepare(tokenizer=sample_tokenizer(), cache_dir=tmp_path, num_folds=3, verbose=False)
    assert not w and capsys.readouterr().out == ''
    assert any('other labels' in m for m in p.warnings['folds']), p.warnings


def test_readme_python_example_prints_when_run_as_a_script(tmp_path):
    readme = (ROOT / 'README.md').read_text(encoding='utf-8')
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'BANGLA_DATA_CACHE': str(tmp_path / 'cache')}
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "'input_ids': (32," in r.stdout and "'labels': (32, 5)" in r.stdout, r.stdout
    assert 'Warning' not in r.stderr, r.stderr
