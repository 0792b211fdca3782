"""Loaders that resume mid-epoch (issue 15, item 3): after k batches of epoch e, a fresh process that loads the
loader's JSON state yields exactly the rest of epoch e (same rows, order and masking) and then the same epoch e+1 as
an uninterrupted run — with 0 and 2 workers, and per rank under torchrun; `loader.sampler.set_epoch(e)` works."""
import json, os, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TORCHRUN_2

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / 'resume_script.py'
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(HERE.parent), 'HF_HUB_OFFLINE': '1'}


def _run(*args, torchrun=False, killed=False):
    cmd = (TORCHRUN_2 if torchrun else [sys.executable]) + [str(SCRIPT)] + [str(a) for a in args]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    if killed: assert r.returncode != 0, "the 'part' run should have been killed"
    else: assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]


@pytest.mark.parametrize('workers', [0, 2])
def test_kill_and_resume_in_a_fresh_process(tmp_path, workers):
    cache = tmp_path / 'cache'
    _run(tmp_path / 'full.json', cache, workers, 'full')
    full = json.loads((tmp_path / 'full.json').read_text())
    n = full['batches_per_epoch']
    assert len(full['seen']) == 3 * n and n > 4
    k = n // 2
    _run(tmp_path / 'part.json', cache, workers, 'part', tmp_path / 'state.json', k, killed=True)
    part = json.loads((tmp_path / 'part.json').read_text())
    assert part['state']['epoch'] == 1 and part['state']['batches_done'] == k
    assert part['seen'] == full['seen'][:n + k]
    _run(tmp_path / 'rest.json', cache, workers, 'resume', tmp_path / 'state.json')
    rest = json.loads((tmp_path / 'rest.json').read_text())
    assert rest['seen'] == full['seen'][n + k:]                 # the rest of epoch 1, then epoch 2: rows, order, masks


def test_kill_and_resume_per_rank_under_torchrun(tmp_path):
    cache = tmp_path / 'cache'
    _run(tmp_path / 'full.json', cache, 0, 'full', torchrun=True)
    _run(tmp_path / 'part.json', cache, 0, 'part', tmp_path / 'state.json', 2, torchrun=True, killed=True)
    _run(tmp_path / 'rest.json', cache, 0, 'resume', tmp_path / 'state.json', torchrun=True)
    for r in (0, 1):
        full, part, rest = (json.loads((tmp_path / f'{m}.{r}.json').read_text()) for m in ('full', 'part', 'rest'))
        n = full['batches_per_epoch']
        assert part['state']['rank'] == r and part['seen'] == full['seen'][:n + 2]
        assert rest['seen'] == full['seen'][n + 2:]
    s0 = {i for b, _ in json.loads((tmp_path / 'full.0.json').read_text())['seen'][:n] for i in b}
    s1 = {i for b, _ in json.loads((tmp_path / 'full.1.json').read_text())['seen'][:n] for i in b}
    assert len(s0 & s1) <= 1                                  # each rank its own shard


def test_state_is_json_and_refuses_another_loader(tmp_path):
    from bangla_data.env import BanglaDataError
    from bangla_data.pipeline import prepare
    from bangla_data.sample import sample_tokenizer
    p = prepare(tokenizer=sample_tokenizer(), cache_dir=tmp_path, num_folds=5, verbose=False)
    train = p.fold(0, batch_size=16)[0]
    it = iter(train); next(it); next(it)
    state = json.loads(json.dumps(train.state_dict()))
    assert (state['epoch'], state['batches_done']) == (0, 2)
    with pytest.raises(BanglaDataError, match='seed'):
        p.fold(0, batch_size=16, seed=7)[0].load_state_dict(state)
    with pytest.raises(BanglaDataError, match='rows|lengths'):
        p.fold(1, batch_size=16)[0].load_state_dict(state)
    with pytest.raises(BanglaDataError, match='batch_size'):
        p.fold(0, batch_size=8)[0].load_state_dict(state)


def test_sampler_set_epoch_as_distributed_sampler_users_write_it(tmp_path):
    from bangla_data.pipeline import prepare
    from bangla_data.sample import sample_tokenizer
    p = prepare(tokenizer=sample_tokenizer(), cache_dir=tmp_path, num_folds=5, verbose=False)
    a, b = p.fold(0, batch_size=16)[0], p.fold(0, batch_size=16)[0]
    a.sampler.set_epoch(3)
    b.batch_sampler.set_epoch(3)
    rows = lambda dl: [x['index'].tolist() for x in dl]
    assert rows(a) == rows(b)
    assert len(a.sampler) == len(p.splits[0][0])                 # still PyTorch's sampler otherwise
