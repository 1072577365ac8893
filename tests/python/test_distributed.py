"""loom.distributed over MPI: worker scripts (tests/python/distributed_workers/) run under mpirun with 2 and 4 ranks
(4 oversubscribed on small machines) and check themselves against NumPy and against single-process training.
MPI is installed by scripts/setup.sh, so a missing mpirun or a build without MPI fails these tests."""
import os
import shutil
import subprocess
import sys
import time

import pytest

import loom.distributed as dist
from loom.distributed.run import build_command, main as loomrun_main

WORKERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "distributed_workers")


def launch(nproc, worker, *args, timeout=120):
    """Runs a worker under `loomrun -n nproc`; returns (returncode, output, seconds)."""
    cmd = [sys.executable, "-m", "loom.distributed.run", "-n", str(nproc), os.path.join(WORKERS, worker)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    start = time.monotonic()
    proc = subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start


def test_mpi_is_built_and_installed():
    assert dist.is_mpi_available(), "loom was built without MPI: run scripts/setup.sh (libopenmpi-dev) and rebuild"
    assert shutil.which("mpirun"), "mpirun is missing: run scripts/setup.sh (openmpi-bin)"


@pytest.mark.parametrize("nproc", [2, 4])
def test_collectives_against_numpy(nproc):
    rc, out, _ = launch(nproc, "collectives.py")
    assert rc == 0, out
    for r in range(nproc):
        assert f"OK rank {r} of {nproc}" in out, out


def test_ddp_matches_single_process_training():
    rc, out, _ = launch(2, "ddp.py")
    assert rc == 0, out
    assert "OK rank 0 of 2" in out and "OK rank 1 of 2" in out, out


def test_killed_rank_is_named_and_the_job_ends():
    rc, out, seconds = launch(2, "killed_rank.py", 20, timeout=60)
    assert rc != 0, out
    assert "[all_reduce]" in out and "rank 1 (pid" in out and "has exited" in out, out
    assert seconds < 20, f"took {seconds:.1f}s: the dead rank was not noticed before the timeout"


def test_timeout_names_the_op_and_sequence_number():
    rc, out, seconds = launch(2, "timeout.py", timeout=60)
    assert rc != 0, out
    assert "[all_reduce] operation 0" in out and "timed out after 2000 ms" in out, out
    assert seconds < 8, f"took {seconds:.1f}s"


def test_launcher_defaults(capsys):
    class Args:
        nproc, hostfile, env, module, script = 64, None, None, None, "train.py"
    cmd = build_command(Args, ["--lr", "0.1"])
    assert cmd[1:3] == ["-n", "64"]
    assert "--oversubscribe" in cmd and cmd[cmd.index("--bind-to") + 1] == "none"  # fewer cores than 64 ranks
    assert ("--allow-run-as-root" in cmd) == (os.geteuid() == 0)
    assert cmd[-3:] == ["train.py", "--lr", "0.1"]
    loomrun_main(["-n", "2", "--dry-run", "-m", "loom.train", "--steps", "3"])
    printed = capsys.readouterr().out
    assert "-m loom.train --steps 3" in printed and "-n 2" in printed


def test_errors_without_a_process_group():
    assert not dist.is_initialized()
    import loom
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.all_reduce(loom.ones(2))
    with pytest.raises(ValueError, match="no process-group backend named 'nccl'"):
        dist.init_process_group("nccl")
