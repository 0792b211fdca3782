"""The teacher-output store (issue 13): a save that fails half-way (a crash) leaves the old entry whole and nothing
half-written; the fingerprint of the real data follows its texts and labels; a process that did not write an entry
reads it back equal."""
import os, subprocess, sys, warnings
import numpy as np
import pytest
import torch

from bangla_data.env import BanglaDataError
from bangla_data.distillation import TeacherOutputStore, data_fingerprint


def test_failed_save_keeps_the_old_entry(tmp_path, monkeypatch):
    store = TeacherOutputStore(tmp_path)
    fp, idx = "0" * 32, np.arange(10)
    old = np.arange(30, dtype=np.float32).reshape(10, 3)
    path = store.save("t", fp, 2, idx, old)
    real_write = np.lib.format.write_array
    calls = []
    def crash_on_second(f, a, **kw):
        calls.append(1)
        if len(calls) == 2: raise OSError("disk full (simulated)")
        return real_write(f, a, **kw)
    monkeypatch.setattr(np.lib.format, "write_array", crash_on_second)
    with pytest.raises(OSError, match="simulated"):
        store.save("t", fp, 2, idx, old + 1)
    monkeypatch.undo()
    assert torch.equal(store.load("t", fp, 2)[idx], torch.from_numpy(old))        # the old entry, whole
    assert sorted(os.listdir(path.parent)) == ["fold-2"]                          # no temporary directory left


def test_read_back_in_another_process(tmp_path):
    store = TeacherOutputStore(tmp_path)
    fp = "a" * 32
    lg = np.random.default_rng(0).normal(size=(50, 5)).astype(np.float32)
    store.save("teacher/v1", fp, 0, np.arange(100, 150), lg)
    code = ("import sys, numpy as np; from bangla_data.distillation import TeacherOutputStore; "
            f"o = TeacherOutputStore(sys.argv[1]).load('teacher/v1', '{fp}', 0, rows=np.arange(100, 150)); "
            "sys.stdout.write(o[np.arange(100, 150)].numpy().tobytes().hex())")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert bytes.fromhex(r.stdout) == lg.tobytes()


@pytest.mark.shared
def test_fingerprint_of_the_real_data(cyberbully, banglabert, mbert, tmp_path):
    "Every view of the same rows gives one fingerprint; one edited comment or label gives another (never old logits)."
    from bangla_data.cache import get_or_create_tokenized_dataset
    comments, labels = cyberbully
    views = {v: get_or_create_tokenized_dataset(comments, labels, t, 64, tmp_path, verbose=False)
             for v, t in (("teacher", banglabert), ("student", mbert))}
    fp = data_fingerprint(comments, labels)
    assert data_fingerprint(views["teacher"]) == data_fingerprint(views["student"]) == data_fingerprint(views) == fp
    edited = list(comments); edited[100] += " ।"
    flipped = labels.copy(); flipped[5, 0] = 1 - flipped[5, 0]
    assert len({fp, data_fingerprint(edited, labels), data_fingerprint(comments, flipped)}) == 3
    store = TeacherOutputStore(tmp_path / "outputs")
    store.save("bb", fp, 0, np.arange(len(comments)), np.zeros((len(comments), labels.shape[1]), np.float32))
    with pytest.raises(BanglaDataError, match="the texts or labels changed since the teacher ran"):
        store.load("bb", data_fingerprint(edited, labels), 0)
