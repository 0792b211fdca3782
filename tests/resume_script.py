"""One run of a training loader for tests/test_resume.py, in a fresh process (or one rank of torchrun).

usage: resume_script.py OUT.json CACHE_DIR WORKERS MODE [STATE.json [K]]
  MODE full    iterate epochs 0-2, record every batch
  MODE part    iterate epoch 0, then K batches of epoch 1; write the loader's state to STATE.json, then kill itself
  MODE resume  load STATE.json into a fresh loader, iterate the rest of epoch 1 and epoch 2
"""
import json, os, signal, sys, warnings
warnings.simplefilter('ignore')
import numpy as np

out, cache, workers, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
state_path = sys.argv[5] if len(sys.argv) > 5 else None
k = int(sys.argv[6]) if len(sys.argv) > 6 else 0
if os.environ.get('WORLD_SIZE'):                        # under torchrun
    import torch.distributed as dist
    dist.init_process_group('gloo')
    out = out.replace('.json', f'.{dist.get_rank()}.json')
    if state_path: state_path = state_path.replace('.json', f'.{dist.get_rank()}.json')
from bangla_data.pipeline import prepare
from bangla_data.sample import sample_tokenizer
p = prepare(tokenizer=sample_tokenizer(), cache_dir=cache, num_folds=5, verbose=False)
train, _, _ = p.fold(2, batch_size=24, num_workers=workers, seed=11, mask_prob=0.2,
                     multiprocessing_context='fork' if workers else None)
rec = lambda b: [b['index'].tolist(), b['input_ids'].tolist()]          # the rows, and the ids after masking
seen = []
if mode == 'full':
    for e in range(3): seen += [rec(b) for b in train]
elif mode == 'part':
    seen += [rec(b) for b in train]                                      # epoch 0
    it = iter(train)
    for _ in range(k): seen.append(rec(next(it)))                        # k batches of epoch 1
    state = train.state_dict()
    json.dumps(state)                                                    # JSON, never pickle
    tmp = state_path + '.tmp'
    with open(tmp, 'w') as f: json.dump(state, f)
    os.replace(tmp, state_path)
    with open(out, 'w') as f: json.dump(dict(seen=seen, state=state), f)
    if os.environ.get('WORLD_SIZE'): dist.barrier()                      # every rank has written its state
    os.kill(os.getpid(), signal.SIGKILL)                                 # preempted: no clean shutdown
elif mode == 'resume':
    with open(state_path) as f: train.load_state_dict(json.load(f))
    seen += [rec(b) for b in train]                                      # the rest of epoch 1
    seen += [rec(b) for b in train]                                      # epoch 2
with open(out, 'w') as f: json.dump(dict(seen=seen, batches_per_epoch=len(train)), f)
if os.environ.get('WORLD_SIZE'):      # every rank has written its results; leave without the teardown that
    dist.barrier()                    # sometimes aborts a gloo rank at exit (see tests/trainer_script.py)
    os._exit(0)
