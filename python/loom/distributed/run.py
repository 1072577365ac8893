"""loomrun: starts N ranks of a Python script under mpirun with defaults that work on a workstation.

    loomrun -n 4 train.py --lr 0.1          (also: python -m loom.distributed.run -n 4 train.py ...)
    loomrun -n 2 -m loom.train              (a module instead of a script)
    loomrun -n 8 --hostfile hosts train.py  (several machines: mpirun's hostfile)

What it adds to plain ``mpirun -n N python script.py``:
- ``--oversubscribe --bind-to none`` when this machine has fewer cores than ranks (mpirun refuses otherwise, and
  binding several ranks to one core serialises them);
- ``--allow-run-as-root`` when run as root (containers);
- OMP_NUM_THREADS = cores // ranks (at least 1) for each rank unless already set, so ranks do not fight over cores;
- ``--mca orte_abort_on_non_zero_status 0``: when a rank dies, mpirun does not kill the others at once, so they
  report which rank died (loom's process group notices a dead peer on the same host within a second, others
  within the timeout) and exit with that error; mpirun then exits non-zero.
Everything after the script name goes to the script. ``--dry-run`` prints the mpirun command instead.
"""
import argparse
import os
import shlex
import shutil
import sys


def build_command(args, script_args):
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        raise SystemExit("loomrun: mpirun was not found; install OpenMPI (Debian: apt-get install openmpi-bin "
                         "libopenmpi-dev, or run scripts/setup.sh)")
    cores = os.cpu_count() or 1
    cmd = [mpirun, "-n", str(args.nproc)]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    if args.hostfile:
        cmd += ["--hostfile", args.hostfile]
    elif cores < args.nproc:
        cmd += ["--oversubscribe", "--bind-to", "none"]
    cmd += ["--mca", "orte_abort_on_non_zero_status", "0"]
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, cores // args.nproc))
    cmd += ["-x", f"OMP_NUM_THREADS={threads}"]
    for name in args.env or []:
        cmd += ["-x", name]
    python = [sys.executable, "-u"]
    target = ["-m", args.module] if args.module else [args.script]
    return cmd + python + target + script_args


_TAKES_VALUE = {"-n", "--nproc", "--nproc-per-node", "--hostfile", "-x", "--env"}


def _split_argv(argv):
    """loomrun's own arguments, and the script's: everything after the script's name or after `-m module`."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-m", "--module"):
            return argv[:i + 2], argv[i + 2:]
        if arg in _TAKES_VALUE:
            i += 2
        elif arg.startswith("-"):
            i += 1
        else:
            return argv[:i + 1], argv[i + 1:]
    return argv, []


def main(argv=None):
    parser = argparse.ArgumentParser(prog="loomrun", description="Run a Python script on N ranks under mpirun.")
    parser.add_argument("-n", "--nproc", "--nproc-per-node", type=int, required=True, help="number of ranks")
    parser.add_argument("--hostfile", help="mpirun hostfile (several machines)")
    parser.add_argument("-x", "--env", action="append", help="environment variable to pass to every rank")
    parser.add_argument("-m", "--module", help="run a module (python -m) instead of a script")
    parser.add_argument("--dry-run", action="store_true", help="print the mpirun command and exit")
    parser.add_argument("script", nargs="?", help="the Python script; everything after it goes to the script")
    own, rest = _split_argv(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(own)
    if args.nproc < 1:
        parser.error("-n must be at least 1")
    if not args.module and not args.script:
        parser.error("give a script (or -m module) to run")
    cmd = build_command(args, rest)
    if args.dry_run:
        print(shlex.join(cmd))
        return 0
    sys.stdout.flush()
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    sys.exit(main())
