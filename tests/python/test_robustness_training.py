"""Random bad calls into the C++ parts of the training stack — fused optimizer ops, gradient clipping, the batch
prefetcher thread, tokenizers, the IDX reader/writer — and into the Python optimizers and data loader above
them: every call must succeed or raise a documented Python exception; nothing may crash the interpreter or
hang. Runs in a child interpreter that prints each call first, so a crash names the call.

Run by hand: python tests/python/test_robustness_training.py SEED COUNT TMPDIR
"""
import os
import subprocess
import sys

import pytest

ALLOWED = (TypeError, ValueError, IndexError, RuntimeError, NotImplementedError, OverflowError, KeyError,
           FileNotFoundError, IsADirectoryError, PermissionError, UnicodeError, FloatingPointError)


def child(seed, count, tmpdir):
    import random

    import loom
    from loom import _C
    from loom.utils.data import DataLoader, TensorDataset

    rng = random.Random(seed)
    dtypes = [loom.float32, loom.float64, loom.float16, loom.int64, loom.int32, loom.uint8, loom.bool]

    def tensor():
        shape = rng.choice([(), (0,), (1,), (3,), (2, 3), (3, 2), (4, 4), (2, 3, 4), (70000,)])
        t = loom.randn(*shape) if shape else loom.randn(())
        t = t.to(rng.choice(dtypes)) if rng.random() < 0.3 else t
        r = rng.randrange(6)
        if r == 0 and t.ndim >= 2:
            t = t.transpose(0, 1)
        elif r == 1 and t.ndim >= 1:
            t = t.expand(2, *t.shape)
        elif r == 2 and t.dtype.is_floating_point:
            t = t.requires_grad_()
        elif r == 3 and t.ndim >= 1 and t.shape[0] > 1:
            t = t[::2]
        return t

    def tensors(n=None):
        n = rng.randrange(4) if n is None else n
        return [tensor() for _ in range(n)]

    def number():
        return rng.choice([0.0, 1e-3, 0.9, 1.0, -1.0, 2.0, float("nan"), float("inf"), -float("inf"), 1e300])

    def garbage():
        return rng.choice([None, 0, -1, 2 ** 62, -2 ** 63, 1.5, float("nan"), "x", b"\xff\xfe", [], [[]], [-1],
                           [0, 2 ** 40], [[0, 1], [-5]], [[1, 2], [3]], {}, object(), tensor(), tensors()])

    def fused_call():
        name = rng.choice(["_fused_sgd_", "_fused_adam_", "_fused_adamw_"])
        n = rng.randrange(4)
        same = rng.random() < 0.5
        params = tensors(n)
        grads = [p.detach().clone() if same and rng.random() < 0.8 else tensor() for p in params]
        if rng.random() < 0.2:
            grads = tensors()
        if name == "_fused_sgd_":
            bufs = [p.detach().clone() if same else tensor() for p in params] if rng.random() < 0.5 else []
            first = [rng.random() < 0.5 for _ in params] if rng.random() < 0.8 else [True]
            kw = dict(lr=number(), momentum=number(), dampening=number(), weight_decay=number(),
                      nesterov=rng.random() < 0.5, maximize=rng.random() < 0.5)
            return f"_optim.{name}", lambda: getattr(_C._optim, name)(params, grads, bufs, first, **kw)
        states = [[p.detach().clone() if same else tensor() for p in params] for _ in range(3)]
        steps = [loom.zeros(1) if rng.random() < 0.8 else tensor() for _ in params]
        kw = dict(lr=number(), beta1=number(), beta2=number(), eps=number(), weight_decay=number(),
                  amsgrad=rng.random() < 0.5, maximize=rng.random() < 0.5)
        return f"_optim.{name}", lambda: getattr(_C._optim, name)(params, grads, *states, steps, **kw)

    def clip_call():
        params = tensors()
        for p in params:
            if p.dtype.is_floating_point and rng.random() < 0.7:
                p.grad = tensor() if rng.random() < 0.3 else loom.ones(p.shape, dtype=p.dtype)
        if rng.random() < 0.5:
            return "clip_grad_norm_", lambda: _C._optim.clip_grad_norm_(params, number(), norm_type=number())
        return "clip_grad_value_", lambda: _C._optim.clip_grad_value_(params, number())

    def prefetch_call():
        ts = tensors(rng.randrange(1, 3))
        batches = rng.choice([[[0]], [[0, 1], [1, 0]], [[-1]], [[5, 2 ** 40]], [[]], [], [[0]] * 5,
                              [[-2 ** 63]], [[2 ** 62, 0]]])
        depth = rng.choice([0, 1, 2, -1, 2 ** 40])

        def run():
            p = _C._data.BatchPrefetcher(ts, batches, depth)
            for _ in range(rng.randrange(8)):
                p.next()
            if rng.random() < 0.5:
                p.close()
        return "BatchPrefetcher", run

    def loader_call():
        ds = TensorDataset(*tensors(rng.randrange(1, 3)))
        kw = {k: garbage() if rng.random() < 0.3 else v for k, v in
              dict(batch_size=rng.choice([1, 2, 3]), shuffle=rng.random() < 0.5, drop_last=rng.random() < 0.5).items()}

        def run():
            for i, _ in enumerate(DataLoader(ds, **kw)):
                if i > 3:
                    break
        return "DataLoader", run

    def tokenizer_call():
        cls = rng.choice([loom.tokenizers.CharTokenizer, loom.tokenizers.ByteLevelBPETokenizer])
        tok = cls()
        text = rng.choice(["", "hello world", "héllo 🙂 wörld\x00", "a" * 1000, "\udcff" if rng.random() < 0.2 else "ab"])
        what = rng.randrange(6)

        def run():
            if rng.random() < 0.8:
                kw = {"vocab_size": rng.choice([None, 0, 1, 256, 300, -5, 2 ** 40])} if cls is not loom.tokenizers.CharTokenizer else {}
                tok.train(text, **kw)
            if what == 0:
                tok.decode(rng.choice([[0], [-1], [2 ** 40], [1, 2, 3], [], [10 ** 9]]))
            elif what == 1:
                tok.encode(garbage() if rng.random() < 0.5 else text)
            elif what == 2:
                tok.encode(text, return_tensor=True)
            elif what == 3:
                path = os.path.join(tmpdir, "tok.json")
                with open(path, "w") as f:
                    f.write(rng.choice(["", "{}", "[]", '{"type": "char"}', '{"type": "bpe", "merges": [[1]]}', "\xff"]))
                cls.load(path)
            elif what == 4:
                tok.decode(garbage())
            else:
                _C._data.pretokenize(garbage())
        return f"{cls.__name__}", run

    def idx_call():
        path = os.path.join(tmpdir, "x.idx")

        def run():
            if rng.random() < 0.5:
                _C._data.write_idx(path, tensor(), gzip=rng.random() < 0.5)
            else:
                with open(path, "wb") as f:
                    f.write(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40))))
            _C._data.read_idx(rng.choice([path, tmpdir, os.path.join(tmpdir, "missing"), ""]))
        return "read_idx/write_idx", run

    def optimizer_call():
        params = [t for t in tensors() if t.dtype.is_floating_point]
        cls = rng.choice([loom.optim.SGD, loom.optim.Adam, loom.optim.AdamW])
        kw = {k: number() for k in rng.sample(["lr", "weight_decay", "eps", "momentum"], rng.randrange(3))
              if not (k in ("eps",) and cls is loom.optim.SGD) and not (k == "momentum" and cls is not loom.optim.SGD)}

        def run():
            leaves = [p.detach().clone().requires_grad_() for p in params]
            for p in leaves:
                if rng.random() < 0.7:
                    p.grad = loom.ones(p.shape, dtype=p.dtype) if rng.random() < 0.8 else tensor()
            opt = cls(leaves if rng.random() < 0.9 else garbage(), **kw)
            opt.step()
            if rng.random() < 0.3:
                opt.load_state_dict(rng.choice([{}, {"state": {}, "param_groups": []}, opt.state_dict()]))
        return cls.__name__, run

    makers = [fused_call, clip_call, prefetch_call, loader_call, tokenizer_call, idx_call, optimizer_call]
    failures = 0
    succeeded = {}
    for i in range(count):
        try:
            label, call = rng.choice(makers)()
        except ALLOWED:
            continue
        print(f"CALL {i}: {label}", flush=True)
        try:
            call()
            succeeded[label] = succeeded.get(label, 0) + 1
        except ALLOWED:
            pass
        except BaseException as e:  # noqa: BLE001
            failures += 1
            print(f"BADEXC {type(e).__name__}: {e}", flush=True)
    print(f"succeeded: {sorted(succeeded.items())}", flush=True)
    print(f"DONE {count} calls, {failures} unexpected exception types", flush=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_random_bad_training_calls_do_not_crash(seed, tmp_path):
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), str(seed), "600", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="2"))
    lines = proc.stdout.splitlines()
    calls = [line for line in lines if line.startswith("CALL ")]
    if proc.returncode != 0:
        last = calls[-1] if calls else "<no call printed>"
        pytest.fail(f"child interpreter died (rc={proc.returncode}) during:\n{last}\nstderr tail:\n{proc.stderr[-3000:]}")
    bad = [(lines[k - 1], line) for k, line in enumerate(lines) if line.startswith("BADEXC")]
    assert not bad, "unexpected exception types:\n" + "\n".join(f"{c}\n  -> {b}" for c, b in bad[:30])
    assert lines and lines[-1].startswith("DONE"), proc.stdout[-2000:]


if __name__ == "__main__":
    child(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
