"""The 🤗 Trainer on bangla_data's loaders (issue 15, item 1): training batches are ours (never re-sharded), a run
resumed from a checkpoint in a fresh process continues on the exact next batch, and under torchrun each rank trains on
its own shard while the gathered predictions cover every validation row exactly once, in row order."""
import json, os, subprocess, sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('accelerate')
from conftest import TORCHRUN_2  # noqa: E402
HERE = Path(__file__).resolve().parent
SCRIPT = HERE / 'trainer_script.py'
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(HERE.parent), 'HF_HUB_OFFLINE': '1'}


def _run(tmp_path, name, mode, step=0, outdir=None):
    out = tmp_path / f'{name}.json'
    cmd = [sys.executable, str(SCRIPT), str(out), str(tmp_path / 'cache'), str(outdir or tmp_path / name), mode, str(step)]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize('where', ['mid-epoch', 'end of epoch 0'])
def test_resume_from_checkpoint_continues_on_the_exact_next_batch(tmp_path, where):
    full = _run(tmp_path, 'full', 'full')
    n = full['steps_per_epoch']                                                 # 6 batches of 64 (the last short)
    assert len(full['seen']) == 10 == full['global_step'] and 3 < n < 10
    assert sorted(full['seen'][:n]) != sorted(full['seen'][n:2 * n])            # epoch 1 is shuffled anew
    at = 3 if where == 'mid-epoch' else n
    first = _run(tmp_path, 'first', 'stop', at, outdir=tmp_path / 'run')
    assert first['seen'] == full['seen'][:at]
    rest = _run(tmp_path, 'rest', 'resume', at, outdir=tmp_path / 'run')     # a fresh process
    assert rest['seen'] == full['seen'][at:], (rest['seen'][:1], full['seen'][at:at + 1])   # same rows, order, masking
    assert rest['global_step'] == 10


def test_torchrun_two_ranks_train_their_own_shards_and_predict_each_row_once(tmp_path):
    out = tmp_path / 'ranks.json'
    cmd = TORCHRUN_2 + [str(SCRIPT), str(out), str(tmp_path / 'cache'), str(tmp_path / 'run'), 'ranks']
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=900)
    written = sorted(p.name for p in tmp_path.glob('ranks.*.json'))     # did a rank die before or after its results?
    assert r.returncode == 0, f'results written: {written}\n' + r.stdout[-3000:] + r.stderr[-4000:]
    r0, r1 = (json.loads((tmp_path / f'ranks.{i}.json').read_text()) for i in (0, 1))
    assert (r0['rank'], r1['rank'], r0['world']) == (0, 1, 2)
    s0, s1 = r0['shards']
    # disjoint shards covering the fold; an odd fold repeats at most one row to give both ranks as many batches
    assert len(set(s0) & set(s1)) <= 1 and len(s0) == len(s1) and sorted(set(s0) | set(s1)) == sorted(r0['train'])
    for r in (r0, r1):
        seen = {i for batch, _ in r['seen'][:r['steps_per_epoch']] for i in batch}   # epoch 0 (each epoch reshards)
        assert seen == set(s0 if r['rank'] == 0 else s1)                             # each rank trains on its own shard
        assert r['steps_per_epoch'] == -(-len(s0) // 64)                              # not sharded a second time
        assert r['rows'] == r0['val'] and r['n_pred'] == len(r0['val'])             # every row once, in row order
        assert np.array_equal(np.array(r['labels']), np.array(r['truth']))
