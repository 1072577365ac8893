"""The cases of issue 4. Each Case's setup() builds the inputs once (numpy -> loom and torch, outside the timed
region) and returns a dict with the two callables, `loom` and `torch`, that are timed side by side."""
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

import loom
import loom.nn.functional as LF
import torch
import torch.nn.functional as TF

from bench import models


@dataclass
class Case:
    name: str
    group: str
    setup: Callable[[], dict]
    limit: Optional[str] = None  # "fma" (compute-bound) or "bandwidth" (memory-bound) or None
    flops: float = 0.0  # per call, for GFLOP/s and the FMA fraction
    bytes: float = 0.0  # per call, minimum DRAM traffic, for GB/s and the bandwidth fraction
    per_call: int = 1  # the callables run this many operations; times are reported per operation
    rate: Optional[tuple] = None  # (unit, amount per call), e.g. ("tokens/s", 64)
    note: str = ""
    kind: str = "time"  # "time" or "memory"
    optional: bool = False  # True where a library may lack the op (bf16 matmul): a failure is "unsupported"
    extra: dict = field(default_factory=dict)


def _rng():
    return np.random.default_rng(0)


def _pair(arr, requires_grad=False):
    """The same numpy array as a loom and a torch tensor (each its own copy)."""
    lt = loom.from_numpy(arr.copy())
    tt = torch.from_numpy(arr.copy())
    if requires_grad:
        lt.requires_grad_(True)
        tt.requires_grad_(True)
    return lt, tt


def _randn(*shape):
    return _rng().standard_normal(shape).astype(np.float32)


def matmul_case(m, k, n, batch=None, label=None, dtype="fp32"):
    shape_a = (m, k) if batch is None else (batch, m, k)
    shape_b = (k, n) if batch is None else (batch, k, n)
    flops = 2.0 * m * k * n * (batch or 1)
    name = label or (f"matmul {dtype} {m}" if m == k == n and batch is None else
                     f"{'bmm' if batch else 'matmul'} {dtype} " + (f"{batch}x" if batch else "") + f"{m}x{k} @ {k}x{n}")

    def setup():
        a_l, a_t = _pair(_randn(*shape_a))
        b_l, b_t = _pair(_randn(*shape_b))
        if dtype == "bf16":
            a_t, b_t = a_t.bfloat16(), b_t.bfloat16()
            a_l, b_l = a_l.bfloat16(), b_l.bfloat16()
        return {"loom": lambda: loom.matmul(a_l, b_l), "torch": lambda: torch.matmul(a_t, b_t)}

    return Case(name, "matmul", setup, limit="fma", flops=flops, optional=dtype != "fp32",
                note="bf16 inputs, bf16 output; % of the fp32 FMA peak" if dtype == "bf16" else "")


def _fwd_bwd(fn_l, fn_t, inputs_l, inputs_t, grad_shape):
    """Callables running forward then backward with a fixed upstream gradient, clearing the inputs' grads."""
    g_l, g_t = _pair(_randn(*grad_shape)) if grad_shape is not None else (None, None)

    def run_l():
        for x in inputs_l:
            x.grad = None
        y = fn_l(*inputs_l)
        y.backward(g_l) if g_l is not None else y.backward()

    def run_t():
        for x in inputs_t:
            x.grad = None
        y = fn_t(*inputs_t)
        y.backward(g_t) if g_t is not None else y.backward()

    return {"loom": run_l, "torch": run_t}


def conv_case(n, c_in, c_out, hw, stride=1):
    out_hw = (hw + 2 - 3) // stride + 1
    fwd = 2.0 * n * c_out * out_hw * out_hw * c_in * 9

    def setup():
        x_l, x_t = _pair(_randn(n, c_in, hw, hw), True)
        w_l, w_t = _pair(_randn(c_out, c_in, 3, 3) * 0.05, True)
        b_l, b_t = _pair(_randn(c_out), True)
        return _fwd_bwd(lambda x, w, b: LF.conv2d(x, w, b, stride=stride, padding=1),
                        lambda x, w, b: TF.conv2d(x, w, b, stride=stride, padding=1),
                        [x_l, w_l, b_l], [x_t, w_t, b_t], (n, c_out, out_hw, out_hw))

    return Case(f"conv2d 3x3 fwd+bwd {n}x{c_in}x{hw}x{hw} -> {c_out}" + (f" stride {stride}" if stride > 1 else ""),
                "conv", setup, limit="fma", flops=3 * fwd, note="flops = 3x forward (input grad + weight grad)")


def softmax_case(shape):
    def setup():
        x_l, x_t = _pair(_randn(*shape), True)
        return _fwd_bwd(lambda x: LF.softmax(x, dim=-1), lambda x: TF.softmax(x, dim=-1), [x_l], [x_t], shape)

    return Case(f"softmax fwd+bwd {'x'.join(map(str, shape))} dim=-1", "fused", setup)


def sdpa_case(b, h, l, e, causal=True):
    # forward 2 products of 2*L*S*E, backward 5 (torch's flash kernels skip the masked half when causal)
    flops = 7 * 2.0 * b * h * l * l * e

    def setup():
        q_l, q_t = _pair(_randn(b, h, l, e), True)
        k_l, k_t = _pair(_randn(b, h, l, e) * 0.5, True)
        v_l, v_t = _pair(_randn(b, h, l, e), True)
        return _fwd_bwd(lambda q, k, v: LF.scaled_dot_product_attention(q, k, v, is_causal=causal),
                        lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=causal),
                        [q_l, k_l, v_l], [q_t, k_t, v_t], (b, h, l, e))

    return Case(f"sdpa fwd+bwd {'causal ' if causal else ''}{b}x{h}x{l}x{e}", "fused", setup, limit="fma",
                flops=flops, note="flops = 7 products of L x S x E (the masked half counted)")


def layer_norm_case(rows, width):
    def setup():
        x_l, x_t = _pair(_randn(rows, width), True)
        w_l, w_t = _pair(1 + 0.1 * _randn(width), True)
        b_l, b_t = _pair(0.1 * _randn(width), True)
        return _fwd_bwd(lambda x, w, b: LF.layer_norm(x, (width,), w, b),
                        lambda x, w, b: TF.layer_norm(x, (width,), w, b),
                        [x_l, w_l, b_l], [x_t, w_t, b_t], (rows, width))

    return Case(f"layer_norm fwd+bwd {rows}x{width}", "fused", setup)


def gelu_case(rows, width):
    def setup():
        x_l, x_t = _pair(_randn(rows, width), True)
        return _fwd_bwd(LF.gelu, TF.gelu, [x_l], [x_t], (rows, width))

    return Case(f"gelu (exact) fwd+bwd {rows}x{width}", "fused", setup)


_UNARY = {
    "exp": (loom.exp, torch.exp), "log": (loom.log, torch.log), "tanh": (loom.tanh, torch.tanh),
    "sigmoid": (loom.sigmoid, torch.sigmoid), "erf": (loom.erf, torch.erf), "silu": (LF.silu, TF.silu),
    "gelu": (LF.gelu, TF.gelu),
}


def unary_case(op, rows, width, dtype="float32"):
    """One transcendental elementwise op forward (the vectorised math of simd/vec_math.h against PyTorch's
    Sleef): log on |x| + 1e-3, the others on N(0, 1)."""
    def setup():
        x = _randn(rows, width)
        if op == "log":
            x = np.abs(x) + np.float32(1e-3)
        x_l, x_t = _pair(x)
        if dtype == "bfloat16":
            x_l, x_t = x_l.bfloat16(), x_t.bfloat16()
        fn_l, fn_t = _UNARY[op]
        return {"loom": lambda: fn_l(x_l), "torch": lambda: fn_t(x_t)}

    return Case(f"{op} fwd {rows}x{width} {dtype}", "elementwise", setup)


def cross_entropy_case(rows, vocab):
    def setup():
        x_l, x_t = _pair(_randn(rows, vocab), True)
        tgt = _rng().integers(0, vocab, size=rows).astype(np.int64)
        t_l, t_t = loom.from_numpy(tgt.copy()), torch.from_numpy(tgt.copy())
        return _fwd_bwd(lambda x: LF.cross_entropy(x, t_l), lambda x: TF.cross_entropy(x, t_t), [x_l], [x_t], None)

    return Case(f"cross_entropy fwd+bwd {rows}x{vocab}", "fused", setup)


def binary_case(op, n):
    def setup():
        a_l, a_t = _pair(_randn(n))
        b_l, b_t = _pair(_randn(n))
        if op == "add":
            return {"loom": lambda: a_l + b_l, "torch": lambda: a_t + b_t}
        return {"loom": lambda: a_l * b_l, "torch": lambda: a_t * b_t}

    return Case(f"{op} {n // (1 << 20)}M float32" if n >= 1 << 20 else f"{op} {n} float32", "bandwidth", setup,
                limit="bandwidth", bytes=3 * 4.0 * n, note="out of place: a fresh result each call (allocation and first-touch page faults included)")


def inplace_case(op, n):
    """a.add_(b) / a.mul_(b): the kernel's bandwidth without allocating a result (b = 1 for mul_, so repeated calls
    neither overflow nor drift into denormals)."""
    def setup():
        a_l, a_t = _pair(_randn(n))
        b = _randn(n) if op == "add" else np.ones(n, dtype=np.float32)
        b_l, b_t = _pair(b)
        if op == "add":
            return {"loom": lambda: a_l.add_(b_l), "torch": lambda: a_t.add_(b_t)}
        return {"loom": lambda: a_l.mul_(b_l), "torch": lambda: a_t.mul_(b_t)}

    return Case(f"{op}_ (in place) {n // (1 << 20)}M float32" if n >= 1 << 20 else f"{op}_ (in place) {n} float32",
                "bandwidth", setup, limit="bandwidth", bytes=3 * 4.0 * n)


def reduce_case(op, n):
    def setup():
        a_l, a_t = _pair(_randn(n))
        if op == "sum":
            return {"loom": lambda: a_l.sum(), "torch": lambda: a_t.sum()}
        return {"loom": lambda: a_l.mean(), "torch": lambda: a_t.mean()}

    return Case(f"{op} {n // (1 << 20)}M float32" if n >= 1 << 20 else f"{op} {n} float32", "bandwidth", setup,
                limit="bandwidth", bytes=4.0 * n)


def dispatch_case(numel, loops):
    def setup():
        a_l, a_t = _pair(_randn(numel))
        b_l, b_t = _pair(_randn(numel))
        rng = range(loops)

        def run_l():
            for _ in rng:
                a_l + b_l

        def run_t():
            for _ in rng:
                a_t + b_t

        return {"loom": run_l, "torch": run_t}

    return Case(f"dispatch: add of {numel} element{'s' if numel > 1 else ''} (Python loop)", "dispatch", setup,
                per_call=loops, note=f"time per add, loop of {loops}")


def _copy_state(src_loom, dst_torch):
    """Copies a loom module's state_dict into the torch module with the same names."""
    src = src_loom.state_dict()
    dst = dst_torch.state_dict()
    if list(src) != list(dst):
        raise RuntimeError(f"state_dict names differ: {sorted(set(src) ^ set(dst))[:5]}")
    with torch.no_grad():
        for name, value in src.items():
            arr = np.ascontiguousarray(value.detach().numpy())
            dst[name].copy_(torch.from_numpy(arr.copy()).reshape(dst[name].shape))


def _train_step_fns(model_l, model_t, opt_l, opt_t, loss_l, loss_t):
    def run_l():
        opt_l.zero_grad(set_to_none=True)
        loss = loss_l()
        loss.backward()
        opt_l.step()

    def run_t():
        opt_t.zero_grad(set_to_none=True)
        loss = loss_t()
        loss.backward()
        opt_t.step()

    return {"loom": run_l, "torch": run_t}


def mlp_step_case(batch, sizes):
    def setup():
        m_l, m_t = models.make_mlp(loom.nn, sizes), models.make_mlp(torch.nn, sizes)
        _copy_state(m_l, m_t)
        x_l, x_t = _pair(_randn(batch, sizes[0]))
        y = _rng().integers(0, sizes[-1], size=batch).astype(np.int64)
        y_l, y_t = loom.from_numpy(y.copy()), torch.from_numpy(y.copy())
        o_l = loom.optim.SGD(m_l.parameters(), lr=0.01, momentum=0.9)
        o_t = torch.optim.SGD(m_t.parameters(), lr=0.01, momentum=0.9)
        return _train_step_fns(m_l, m_t, o_l, o_t, lambda: LF.cross_entropy(m_l(x_l), y_l),
                               lambda: TF.cross_entropy(m_t(x_t), y_t))

    flops = 6.0 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return Case(f"train step MLP {'-'.join(map(str, sizes))} batch {batch} SGD", "train", setup, limit="fma",
                flops=flops, note="SGD momentum 0.9; flops = 6 x batch x weights")


def lstm_case(seq, batch, hidden, layers=1):
    """nn.LSTM forward + backward (input of width `hidden` requiring grad), the same weights in both frameworks."""
    def setup():
        m_l = loom.nn.LSTM(hidden, hidden, num_layers=layers)
        m_t = torch.nn.LSTM(hidden, hidden, num_layers=layers)
        _copy_state(m_l, m_t)
        x_l, x_t = _pair(_randn(seq, batch, hidden), requires_grad=True)
        return _fwd_bwd(lambda x: m_l(x)[0], lambda x: m_t(x)[0], [x_l], [x_t], (seq, batch, hidden))

    flops = 3 * 2.0 * seq * batch * layers * 8 * hidden * hidden  # forward + two backward GEMMs per weight
    return Case(f"LSTM fwd+bwd seq {seq} batch {batch} hidden {hidden} layers {layers}", "train", setup, limit="fma",
                flops=flops, note="input width = hidden; flops = 3 x the four gates' GEMMs")


def cnn_step_case(batch, hw, widths):
    def setup():
        m_l, m_t = models.make_cnn(loom.nn, widths), models.make_cnn(torch.nn, widths)
        _copy_state(m_l, m_t)
        m_l.train()
        m_t.train()
        x_l, x_t = _pair(_randn(batch, 3, hw, hw))
        y = _rng().integers(0, 10, size=batch).astype(np.int64)
        y_l, y_t = loom.from_numpy(y.copy()), torch.from_numpy(y.copy())
        o_l = loom.optim.SGD(m_l.parameters(), lr=0.01, momentum=0.9)
        o_t = torch.optim.SGD(m_t.parameters(), lr=0.01, momentum=0.9)
        return _train_step_fns(m_l, m_t, o_l, o_t, lambda: LF.cross_entropy(m_l(x_l), y_l),
                               lambda: TF.cross_entropy(m_t(x_t), y_t))

    return Case(f"train step ResNet-style CNN {hw}x{hw} widths {'/'.join(map(str, widths))} batch {batch} SGD",
                "train", setup, note="BatchNorm in training mode, SGD momentum 0.9")


def _gpt_pair(cfg):
    from loom.models import GPT, GPTConfig

    m_l = GPT(GPTConfig(vocab_size=cfg.vocab_size, block_size=cfg.block_size, n_layer=cfg.n_layer,
                        n_head=cfg.n_head, n_embd=cfg.n_embd, dropout=0.0, bias=True))
    m_t = models.torch_gpt(cfg)
    _copy_state(m_l, m_t)
    return m_l, m_t


def gpt_step_case(cfg, batch, autocast=False):
    def setup():
        m_l, m_t = _gpt_pair(cfg)
        rng = _rng()
        idx = rng.integers(0, cfg.vocab_size, size=(batch, cfg.block_size)).astype(np.int64)
        tgt = rng.integers(0, cfg.vocab_size, size=(batch, cfg.block_size)).astype(np.int64)
        i_l, i_t = loom.from_numpy(idx.copy()), torch.from_numpy(idx.copy())
        t_l, t_t = loom.from_numpy(tgt.copy()), torch.from_numpy(tgt.copy())
        o_l = loom.optim.AdamW(m_l.parameters(), lr=3e-4, weight_decay=0.1)
        try:
            o_t = torch.optim.AdamW(m_t.parameters(), lr=3e-4, weight_decay=0.1, fused=True)
        except (RuntimeError, ValueError):
            o_t = torch.optim.AdamW(m_t.parameters(), lr=3e-4, weight_decay=0.1, foreach=True)
        if not autocast:
            return _train_step_fns(m_l, m_t, o_l, o_t, lambda: m_l(i_l, t_l)[1], lambda: m_t(i_t, t_t)[1])

        # The forward under bf16 autocast, backward and the optimizer outside it (PyTorch's recipe).
        def loss_l():
            with loom.autocast("cpu", dtype=loom.bfloat16):
                return m_l(i_l, t_l)[1]

        def loss_t():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return m_t(i_t, t_t)[1]

        return _train_step_fns(m_l, m_t, o_l, o_t, loss_l, loss_t)

    if autocast:
        return Case(f"train step GPT {cfg.n_layer}L d{cfg.n_embd} ctx {cfg.block_size} batch {batch} AdamW "
                    "bf16 autocast", "train", setup,
                    note="forward under loom.autocast / torch.autocast('cpu', bfloat16); fp32 weights, AdamW fused")
    return Case(f"train step GPT {cfg.n_layer}L d{cfg.n_embd} ctx {cfg.block_size} batch {batch} AdamW", "train",
                setup, note="torch AdamW fused=True (its fastest CPU AdamW)")


def gpt_generate_case(cfg, tokens):
    def setup():
        m_l, m_t = _gpt_pair(cfg)
        m_l.eval()
        m_t.eval()
        prompt = np.zeros((1, 1), dtype=np.int64)
        p_l, p_t = loom.from_numpy(prompt.copy()), torch.from_numpy(prompt.copy())
        out_l = m_l.generate(p_l, tokens, temperature=0)
        out_t = m_t.generate(p_t, tokens)
        same = np.array_equal(out_l.numpy(), out_t.numpy())
        return {"loom": lambda: m_l.generate(p_l, tokens, temperature=0), "torch": lambda: m_t.generate(p_t, tokens),
                "note": "greedy tokens identical" if same else "greedy tokens differ (float rounding)"}

    return Case(f"GPT generate {tokens} tokens, KV cache, batch 1 ({cfg.n_layer}L d{cfg.n_embd})", "generate", setup,
                rate=("tokens/s", tokens),
                note="loom GPT.generate(temperature=0) vs a torch greedy loop with its own KV cache (bench/models.py)")


def memory_case(cfg, batch, steps):
    return Case(f"peak RSS GPT train step {cfg.n_layer}L d{cfg.n_embd} ctx {cfg.block_size} batch {batch}", "memory",
                None, kind="memory", extra={"cfg": cfg, "batch": batch, "steps": steps},
                note="VmHWM of a fresh process per framework (the other library not imported), "
                     f"model + AdamW + {steps} steps")


def build_cases(smoke):
    """All cases, at issue 4's sizes or (smoke) tiny ones."""
    M = 1 << 20
    if smoke:
        gpt = models.Config(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=32)
        return [
            matmul_case(16, 16, 16), matmul_case(64, 32, 48, label="matmul fp32 64x32 @ 32x48 (GPT-shape stand-in)"),
            matmul_case(16, 8, 16, batch=4), matmul_case(32, 32, 32, dtype="bf16"),
            conv_case(2, 4, 4, 8),
            softmax_case((2, 2, 16, 16)), sdpa_case(2, 2, 16, 8), layer_norm_case(32, 32), gelu_case(32, 64), unary_case("exp", 32, 64), cross_entropy_case(32, 65),
            binary_case("add", 4096), binary_case("mul", 4096), inplace_case("add", 4096), inplace_case("mul", 4096),
            reduce_case("sum", 4096), reduce_case("mean", 4096),
            dispatch_case(1, 20), dispatch_case(1000, 20),
            mlp_step_case(8, (32, 16, 16, 10)), cnn_step_case(2, 8, (4, 8)), lstm_case(4, 2, 8),
            gpt_step_case(gpt, 2), gpt_step_case(gpt, 2, autocast=True), gpt_generate_case(gpt, 4),
            memory_case(gpt, 2, 1),
        ]
    gpt = models.Config(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384)
    return [
        matmul_case(64, 64, 64), matmul_case(256, 256, 256), matmul_case(1024, 1024, 1024),
        matmul_case(2048, 2048, 2048),
        matmul_case(8 * 256, 384, 1152, label="matmul fp32 GPT qkv (8*256)x384 @ 384x1152"),
        matmul_case(8 * 256, 384, 1536, label="matmul fp32 GPT mlp-up (8*256)x384 @ 384x1536"),
        matmul_case(8 * 256, 1536, 384, label="matmul fp32 GPT mlp-down (8*256)x1536 @ 1536x384"),
        matmul_case(256, 784, 1024, label="matmul fp32 MLP 256x784 @ 784x1024"),
        matmul_case(256, 1024, 1024, label="matmul fp32 MLP 256x1024 @ 1024x1024"),
        matmul_case(256, 64, 256, batch=48, label="bmm fp32 attention scores 48x256x64 @ 48x64x256"),
        matmul_case(256, 256, 64, batch=48, label="bmm fp32 attention values 48x256x256 @ 48x256x64"),
        matmul_case(1024, 1024, 1024, dtype="bf16"),
        conv_case(64, 64, 64, 32), conv_case(64, 128, 128, 16), conv_case(64, 64, 128, 32, stride=2),
        softmax_case((8, 6, 256, 256)), sdpa_case(8, 6, 256, 64), sdpa_case(8, 6, 256, 64, causal=False),
        layer_norm_case(8 * 256, 384), gelu_case(8 * 256, 1536),
        *[unary_case(op, 8 * 256, 1536) for op in sorted(_UNARY)], unary_case("gelu", 8 * 256, 1536, "bfloat16"),
        cross_entropy_case(8 * 256, 65),
        binary_case("add", 16 * M), binary_case("mul", 16 * M), inplace_case("add", 16 * M),
        inplace_case("mul", 16 * M), reduce_case("sum", 16 * M),
        reduce_case("mean", 16 * M),
        dispatch_case(1, 1000), dispatch_case(1000, 1000),
        mlp_step_case(256, (784, 1024, 1024, 10)), cnn_step_case(64, 32, (32, 64, 128)),
        lstm_case(64, 32, 256),
        gpt_step_case(gpt, 8), gpt_step_case(gpt, 8, autocast=True), gpt_generate_case(gpt, 64),
        memory_case(gpt, 8, 3),
    ]
