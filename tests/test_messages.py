"""The smaller items of issue 21: a string `label_columns` is one label, a closed pipe ends the command quietly, and
the length report prints no transformers warning."""
import logging, os, subprocess, sys, warnings
from pathlib import Path

import numpy as np
import pytest

from bangla_data.pipeline import prepare
from bangla_data.tokenize import token_length_report, tokenize_to_data, unk_rates

ROOT = Path(__file__).resolve().parents[1]


def test_a_string_label_column_is_one_label_in_prepare(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        p = prepare(label_columns='bully', tokenizer=_sample_tokenizer_dir(tmp_path), cache_dir=tmp_path / 'c',
                    verbose=False, report_unk=False)
    assert p.label_columns == ['bully'] and p.labels.shape[1] == 1


def _sample_tokenizer_dir(tmp_path):
    from bangla_data.sample import sample_tokenizer
    d = tmp_path / 'tok'
    if not d.exists(): sample_tokenizer().save_pretrained(d)
    return str(d)


@pytest.mark.parametrize('command', [['load'], ['load', '--json'], ['prepare', '--json']])
def test_a_closed_pipe_ends_the_command_quietly(tmp_path, command):
    "`bangla-data load | head -1`: the reader leaves after one line; no BrokenPipe traceback, status 0."
    code = 'import sys; from bangla_data.cli import main; sys.exit(main())'
    env = dict(os.environ, HF_HUB_OFFLINE='1', BANGLA_DATA_CACHE=str(tmp_path / 'cache'))
    shell = (f"{sys.executable} -c '{code}' {' '.join(command)} | head -c 20 > /dev/null; "
             "echo \"status ${PIPESTATUS[0]}\" >&2")
    r = subprocess.run(['bash', '-c', shell], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert 'Traceback' not in r.stderr and 'BrokenPipe' not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1] in ('status 0', 'status 120'), r.stderr


@pytest.mark.shared
def test_the_length_report_prints_no_transformers_warning(mbert, capfd):
    "mBERT's 512-token limit: re-measuring a longer comment untruncated must not print 'Token indices …'."
    texts = ['আমি বাংলায় গান গাই ' * 300, 'কি খবর']
    td = tokenize_to_data(texts, np.zeros((2, 1)), mbert, 16)
    rep = token_length_report(td, texts, mbert)
    unk_rates(texts, texts, mbert)
    out, err = capfd.readouterr()
    assert rep.truncated == 1 and rep.lengths.max() > 512
    assert 'Token indices sequence length' not in out + err
