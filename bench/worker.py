"""One framework's side of the suite in a process of its own (`python -m bench`, the default process mode).

In one process loom and PyTorch share one OpenMP runtime, and whichever loads first sets its wait policy for both
(loom's passive workers slowed PyTorch's small-CNN step from 12.4 to 21-24 ms on a Zen 5). Here each framework
runs in its own worker under its own defaults: the worker imports the framework it times first, and the parent
keeps the worker whose turn it is not stopped (SIGSTOP), so its spinning OpenMP threads never take a core from the
other side. Both workers build the same case from the same seeds (bench/cases.py) and time only their own side.

Parent side: Worker("torch").setup(name, smoke) ... .sample(number) ... .close().
Child side:  python -m bench.worker loom|torch  (JSON lines on stdin/stdout; the case's own prints go to stderr).
"""
import gc
import json
import os
import signal
import subprocess
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMEWORKS = ("loom", "torch")
# What loom sets for itself on import (python/loom/__init__.py); the PyTorch worker must not inherit them from
# the parent unless the user asked for them.
LOOM_DEFAULTS = ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT")


class WorkerError(RuntimeError):
    pass


class Worker:
    """A child process timing one framework's callables; stopped whenever the parent is not talking to it."""

    def __init__(self, framework, user_env):
        env = dict(os.environ)
        if framework == "torch":
            for key in LOOM_DEFAULTS:
                env.pop(key, None)
                if user_env.get(key) is not None:
                    env[key] = user_env[key]
        self.framework = framework
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.worker", framework], cwd=_REPO, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self._stopped = False
        self._call({"cmd": "ready"})

    def _call(self, request):
        if self._stopped:
            os.kill(self.proc.pid, signal.SIGCONT)
            self._stopped = False
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError) as e:
            raise WorkerError(f"{self.framework} worker died: {e}") from e
        if not line:
            raise WorkerError(f"{self.framework} worker exited (status {self.proc.wait()})")
        os.kill(self.proc.pid, signal.SIGSTOP)
        self._stopped = True
        reply = json.loads(line)
        if "error" in reply:
            raise WorkerError(reply["error"])
        return reply

    def setup(self, case_name, smoke):
        """Builds the case; returns its note (or None). Raises WorkerError when setup fails."""
        return self._call({"cmd": "setup", "case": case_name, "smoke": smoke}).get("note")

    def set_threads(self, n):
        self._call({"cmd": "threads", "n": n})

    def probe(self):
        """None when one call succeeds, else the exception as 'Type: message'."""
        return self._call({"cmd": "probe"})["failure"]

    def sample(self, number):
        return self._call({"cmd": "time", "number": number})["s"]

    def release(self):
        self._call({"cmd": "release"})

    def close(self):
        if self.proc.poll() is None:
            if self._stopped:
                os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _short_error(e):
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg}"[:160]


def serve(framework):
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a case prints goes to stderr, not into the protocol
    # The framework timed here loads first, so the OpenMP runtime takes its defaults; the other one is imported
    # by bench.cases only to build the same inputs.
    if framework == "torch":
        import torch as timed
    else:
        import loom as timed
    if _REPO not in sys.path:
        sys.path.insert(0, _REPO)
    from bench.cases import build_cases
    from bench.timing import time_once

    cases, fn = {}, None
    for line in sys.stdin:
        request = json.loads(line)
        reply = {}
        try:
            cmd = request["cmd"]
            if cmd == "setup":
                smoke = request["smoke"]
                if smoke not in cases:
                    cases[smoke] = {c.name: c for c in build_cases(smoke)}
                fns = cases[smoke][request["case"]].setup()
                reply["note"] = fns.get("note")
                fn = fns[framework]
            elif cmd == "threads":
                timed.set_num_threads(request["n"])
            elif cmd == "probe":
                try:
                    fn()
                    reply["failure"] = None
                except Exception as e:  # noqa: BLE001 - a missing op or dtype becomes a row, not a crash
                    reply["failure"] = _short_error(e)
            elif cmd == "time":
                reply["s"] = time_once(fn, request["number"])
            elif cmd == "release":
                fn = None
                gc.collect()
        except Exception as e:  # noqa: BLE001 - reported to the parent, which marks the row
            reply = {"error": _short_error(e)}
        replies.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in FRAMEWORKS:
        sys.exit("usage: python -m bench.worker loom|torch")
    serve(sys.argv[1])
