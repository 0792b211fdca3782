"""One options object (issue 20 item 2): `prepare`'s keywords, the CLI's flags, the report's config, split files and
the split cache key all come from `PrepareOptions`; a run saved to a file is reproduced exactly, from Python and from
the command line; a mistyped key is refused with the closest option."""
import dataclasses, inspect, json, os, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

from bangla_data.options import (PrepareOptions, add_option_flags, config_dict, option_docs, option_fields, options_from_args,
                                 resolve_options, split_settings)
from bangla_data.env import BanglaDataError
from bangla_data.pipeline import prepare
from bangla_data.cli import build_parser, main
from conftest import CYBERBULLY_CSV, CYBERBULLY_LABELS, BANGLABERT_DIR

ROOT = Path(__file__).resolve().parents[1]


def test_prepare_takes_exactly_the_options_with_their_defaults():
    params = inspect.signature(prepare).parameters
    fields = option_fields()
    assert list(params)[:-1] == [f.name for f in fields] and list(params)[-1] == 'config'
    defaults = PrepareOptions()
    for f in fields: assert params[f.name].default == getattr(defaults, f.name), f.name
    # the design's defaults
    assert (defaults.max_length, defaults.num_folds, defaults.seed, defaults.tokenizer) == \
        (128, 5, 42, 'csebuetnlp/banglabert')
    with pytest.raises(TypeError): prepare(*range(len(fields) + 1))      # `config` is keyword-only


def test_every_option_has_a_flag_and_a_docment():
    prep = build_parser()._subparsers._group_actions[0].choices['prepare']
    dests = {a.dest for a in prep._actions}
    assert [f.name for f in option_fields() if f.name not in dests] == []
    flags = [f.metadata['flag'] for f in option_fields()]
    assert len(set(flags)) == len(flags)                    # each flag declared once
    docs = option_docs()
    assert all(docs.get(f.name) for f in option_fields())
    help_text = prep.format_help()
    for f in option_fields(): assert f.metadata['flag'] in help_text or f.name == 'data'


def test_a_flag_sets_exactly_its_option():
    "Each flag, given alone, changes its own option and no other (bools flip their default)."
    defaults = PrepareOptions()
    examples = dict(tokenizer='x', text_column='t', label_columns='a,b', max_length='64', num_folds='3',
                    stratification_type='multilabel', cache_dir='/c', seed='7', clean_options='{"remove_latin": true}',
                    missing_text='error', groups='g', true_values='y', false_values='n', split='train',
                    conflicts='drop', test_size='0.2', split_column='s', splits='/s.csv', id_column='i', trusted_cache='/t',
                    max_text_chars='500', task='multiclass', classes='a,b')
    for f in option_fields():
        if f.name == 'data': continue
        p = build_parser()._subparsers._group_actions[0].choices['prepare']
        argv = [f.metadata['flag']] + ([] if isinstance(getattr(defaults, f.name), bool) else [examples[f.name]])
        given = options_from_args(p.parse_args(argv))
        assert list(given) == [f.name], (f.name, given)
        o = resolve_options(given)
        assert getattr(o, f.name) != getattr(defaults, f.name), f.name
        assert {g.name for g in option_fields() if getattr(o, g.name) != getattr(defaults, g.name)} == {f.name}


def test_unknown_keys_are_refused_with_the_closest_option(tmp_path):
    run = tmp_path / 'run.json'
    run.write_text(json.dumps({'num_folds': 3, 'text_colum': 'comment'}))
    with pytest.raises(BanglaDataError, match=r"unknown option 'text_colum' in .*run\.json; did you mean 'text_column'"):
        prepare(config=run)
    with pytest.raises(BanglaDataError, match="did you mean 'num_folds'"): prepare(num_fold=3)
    run.write_text('{"seed": 1,')
    with pytest.raises(BanglaDataError, match='is not JSON'): prepare(config=run)
    assert main(['prepare', '--config', str(tmp_path / 'missing.json'), '--quiet']) == 2


def test_the_split_key_and_split_file_settings_come_from_the_options():
    o = PrepareOptions()
    key = split_settings(o, ('splits',))
    assert set(key) == {f.name for f in option_fields('splits')}
    assert {'num_folds', 'seed', 'stratification_type', 'group_duplicates', 'test_size', 'label_columns'} <= set(key)
    assert 'cache_dir' not in key and 'verbose' not in key and 'id_column' not in key
    for f in option_fields('splits'):
        assert f.name in split_settings(o, ('load', 'splits'))


def _run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, '-c', 'import sys; from bangla_data.cli import main; sys.exit(main())', *args], capture_output=True, text=True,
                          cwd=cwd, env=dict(os.environ, HF_HUB_OFFLINE='1'))


def _signature(p):
    "What must be identical between two runs: the cache entry and every row's fold."
    return p.tokenized.manifest['key'], p.fold_ids.tolist(), p.config['num_folds'], p.config['seed']


def _round_trip(tmp_path, **kwargs):
    "Python -> run file -> CLI (--config, --save-config) -> Python: the same cache entry and splits each time."
    cache = tmp_path / 'cache'
    first = prepare(cache_dir=cache, verbose=False, **kwargs)
    run1 = first.save_config(tmp_path / 'run1.json')
    r = _run_cli('prepare', '--config', str(run1), '--save-config', str(tmp_path / 'run2.json'), '--json',
                 cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc['cache']['status'] == 'hit'
    assert doc['splits']['fold'] == [f if f >= 0 else 'test' for f in first.fold_ids.tolist()] or \
        doc['splits']['fold'] == first.split_table()['fold'].tolist()
    assert json.loads((tmp_path / 'run2.json').read_text()) == json.loads(run1.read_text())
    again = prepare(config=tmp_path / 'run2.json', verbose=False)
    assert again.cache['status'] == 'hit'
    assert _signature(again) == _signature(first)
    assert config_dict(again.options) == config_dict(first.options)   # the same settings (paths as written)
    return first


def test_round_trip_on_the_sample(tmp_path):
    from bangla_data.sample import sample_tokenizer
    tok_dir = tmp_path / 'tok'
    sample_tokenizer().save_pretrained(tok_dir)
    p = _round_trip(tmp_path, tokenizer=str(tok_dir), num_folds=3, seed=11, test_size=0.1,
                    clean_options={'emoji': 'name'}, max_length=64)
    assert len(p.test_idx) and p.config['clean_options'] == {'emoji': 'name'}


@pytest.mark.shared
def test_round_trip_on_real_data(tmp_path):
    _round_trip(tmp_path, data=str(CYBERBULLY_CSV), text_column='comment', label_columns=CYBERBULLY_LABELS,
                tokenizer=str(BANGLABERT_DIR), stratification_type='multilabel', test_size=0.15)


def test_explicit_arguments_override_the_run_file(tmp_path):
    from bangla_data.sample import sample_tokenizer
    tok_dir = tmp_path / 'tok'
    sample_tokenizer().save_pretrained(tok_dir)
    run = tmp_path / 'run.json'
    run.write_text(json.dumps({'tokenizer': str(tok_dir), 'num_folds': 3, 'seed': 5, 'report_unk': False}))
    p = prepare(config=run, num_folds=4, cache_dir=tmp_path / 'c', verbose=False)
    assert (p.num_folds, p.options.seed, p.unk) == (4, 5, None)
    r = _run_cli('prepare', '--config', str(run), '--folds', '2', '--cache-dir', str(tmp_path / 'c'), '--json')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)['config']['num_folds'] == 2 and json.loads(r.stdout)['config']['seed'] == 5
