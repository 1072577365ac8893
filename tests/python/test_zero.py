"""ZeRO stages 1-3 and sharded checkpoints (loom.distributed.zero, loom.distributed.checkpoint): workers in
tests/python/distributed_workers/ run under mpirun and compare themselves with one process training on the whole batch;
checkpoints are resumed on other world sizes, stages and in this (single) process."""
import json
import os
import sys

import numpy as np
import pytest
import safetensors.numpy
from test_distributed import launch

import loom
from loom.distributed import checkpoint

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "distributed_workers"))
import zero_common as common


def _line(out, prefix):
    """The JSON value after `prefix` in the output (mpirun may append other ranks' lines to it)."""
    text = out[out.index(prefix) + len(prefix):]
    return json.JSONDecoder().raw_decode(text)[0]


@pytest.mark.parametrize("nproc", [1, 2, 4])
def test_ddp_and_zero_stages_match_single_process_training(nproc):
    rc, out, _ = launch(nproc, "zero_gpt.py")
    assert rc == 0, out
    for r in range(nproc):
        assert f"OK rank {r} of {nproc}" in out, out
    if nproc == 1:
        return
    memory = _line(out, "MEMORY ")
    full, stages = memory["full"], memory["stages"]
    sharded = {"1": {"optimizer_state"}, "2": {"optimizer_state", "gradients"},
               "3": {"optimizer_state", "gradients", "parameters"}}
    for stage, kinds in sharded.items():
        for kind in ("parameters", "gradients", "optimizer_state"):
            ratio = stages[stage][kind] / full[kind]
            if kind in kinds:  # 1/world, plus at most world - 1 padding elements per unit
                assert 1 / nproc <= ratio < 1 / nproc + 0.01, (stage, kind, ratio)
            else:
                assert 1 <= ratio < 1.01, (stage, kind, ratio)


def _index(path):
    with open(os.path.join(path, "index.json")) as f:
        return json.load(f)


def _reference(steps):
    losses, weights = common.reference(common.ADAMW, steps=steps)
    return losses, weights


def _plain_resume(path, start, stop):
    net = common.model()
    opt = common.ADAMW[0](net.parameters(), **common.ADAMW[1])
    checkpoint.load(path, net, opt)
    return common.reference(common.ADAMW, steps=stop, net=net, opt=opt, start=start)


def test_checkpoint_reshards_across_world_sizes_and_stages(tmp_path):
    ref_losses, ref_weights = _reference(6)
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    # ZeRO-2 on 2 ranks -> ZeRO-3 on 4 ranks
    rc, out, _ = launch(2, "zero_ckpt.py", 2, a, 0, 3)
    assert rc == 0, out
    np.testing.assert_allclose(_line(out, "LOSSES "), ref_losses[:3], **common.TOL)
    index = _index(a)
    assert index["world_size"] == 2 and len(index["files"]) == 2
    rc, out, _ = launch(4, "zero_ckpt.py", 3, a, 3, 6)
    assert rc == 0, out
    np.testing.assert_allclose(_line(out, "LOSSES "), ref_losses[3:6], **common.TOL)
    # ZeRO-1 on 4 ranks -> one plain process (this one), and consolidated into one file
    rc, out, _ = launch(4, "zero_ckpt.py", 1, b, 0, 3)
    assert rc == 0, out
    losses, weights = _plain_resume(b, 3, 6)
    np.testing.assert_allclose(losses, ref_losses[3:6], **common.TOL)
    for k, v in ref_weights.items():
        np.testing.assert_allclose(weights[k].numpy(), v.numpy(), err_msg=k, **common.WEIGHT_TOL)
    one = str(tmp_path / "one")
    checkpoint.consolidate(b, one)
    index = _index(one)
    assert index["world_size"] == 1 and len(index["files"]) == 1
    tensors = safetensors.numpy.load_file(os.path.join(one, index["files"][0]))  # an independent reader
    _, weights3 = _reference(3)
    for name, p in common.model().named_parameters():
        assert tensors[f"model/{name}"].shape == tuple(p.shape), name
        np.testing.assert_allclose(tensors[f"model/{name}"], weights3[name].numpy(), err_msg=name,
                                   **common.WEIGHT_TOL)
        assert f"optim/exp_avg/{name}" in tensors and f"optim/exp_avg_sq/{name}" in tensors
    # DDP (plain format, written by rank 0) -> ZeRO-2 on 2 ranks
    c = str(tmp_path / "c")
    rc, out, _ = launch(2, "zero_ckpt.py", 0, c, 0, 3)
    assert rc == 0, out
    rc, out, _ = launch(2, "zero_ckpt.py", 2, c, 3, 6)
    assert rc == 0, out
    np.testing.assert_allclose(_line(out, "LOSSES "), ref_losses[3:6], **common.TOL)


def test_crash_mid_save_leaves_the_previous_checkpoint(tmp_path):
    path = str(tmp_path / "ckpt")
    rc, out, _ = launch(2, "zero_ckpt.py", 3, path, 0, 3, "crash")
    assert rc != 0, out
    assert any(f.startswith("shard-") for f in os.listdir(path))
    # the index still names the files of the step-3 save, and they load: training continues the reference curve
    ref_losses, _ = _reference(5)
    losses, _ = _plain_resume(path, 3, 5)
    np.testing.assert_allclose(losses, ref_losses[3:5], **common.TOL)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no index.json"):
        checkpoint.load(str(tmp_path), common.model())
    net = common.model()
    checkpoint.save(str(tmp_path), net, loom.optim.SGD(net.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="holds SGD state, the optimizer is a AdamW"):
        checkpoint.load(str(tmp_path), net, loom.optim.AdamW(net.parameters()))
