"""nn ops beyond the conformance table: dropout statistics (values cannot match torch's RNG), double backward
through pooling and convolution (against torch), and the error paths."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import loom
import loom.nn.functional as F


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics(p):
    loom.manual_seed(0)
    n = 200_000
    x = loom.ones(n, dtype=loom.float64)
    x.requires_grad_(True)
    out = F.dropout(x, p=p)
    values = out.detach().numpy()
    kept = values != 0
    # Fraction zeroed: within 5 standard deviations of p.
    assert abs((1 - kept.mean()) - p) < 5 * np.sqrt(p * (1 - p) / n)
    # Kept elements are scaled by exactly 1/(1-p).
    np.testing.assert_allclose(values[kept], 1.0 / (1 - p), rtol=1e-12)
    # Gradient: mask / (1-p).
    (g,) = loom.autograd.grad(out.sum(), [x])
    np.testing.assert_allclose(g.numpy(), kept / (1 - p), rtol=1e-12)


def test_dropout_differs_between_calls_and_keeps_dtype():
    x = loom.ones(1000, dtype=loom.bfloat16)
    a, b = F.dropout(x, 0.5), F.dropout(x, 0.5)
    assert a.dtype == loom.bfloat16
    assert not np.array_equal(a.float().numpy(), b.float().numpy())


def test_dropout_inplace():
    x = loom.ones(100)
    out = F.dropout(x, 0.5, inplace=True)
    assert out is x
    assert set(np.unique(x.numpy())) <= {0.0, 2.0}


def test_attention_dropout_statistics():
    # With value = 1 every output is sum(kept weights) / (1 - p): 1 in expectation, 0 for p = 1.
    loom.manual_seed(1)
    q, k = loom.randn(64, 8, 4), loom.randn(64, 16, 4)
    out = F.scaled_dot_product_attention(q, k, loom.ones(64, 16, 3), dropout_p=0.5).numpy()
    assert abs(out.mean() - 1.0) < 0.05
    assert not np.allclose(out, 1.0)
    zeros = F.scaled_dot_product_attention(q, k, loom.ones(64, 16, 3), dropout_p=1.0).numpy()
    assert np.all(zeros == 0)


def test_batch_norm_updates_running_stats_in_place():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3, 4))
    rm, rv = loom.zeros(3, dtype=loom.float64), loom.ones(3, dtype=loom.float64)
    trm, trv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    for _ in range(3):  # repeated updates accumulate
        F.batch_norm(loom.tensor(x), rm, rv, training=True, momentum=0.2)
        TF.batch_norm(torch.tensor(x), trm, trv, training=True, momentum=0.2)
    np.testing.assert_allclose(rm.numpy(), trm.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv.numpy(), trv.numpy(), rtol=1e-12)
    assert not rm.requires_grad


def double_backward(fn_loom, fn_torch, shape, rng):
    """d/dv and d/dx of sum(w * x * d<v, f(x)>/dx) for loom and torch (exercises the backward of the backward)."""
    x = rng.normal(size=shape)
    v = rng.normal(size=tuple(fn_torch(torch.tensor(x)).shape))
    w = np.cos(np.arange(x.size)).reshape(shape)
    results = []
    for lib, fn, grad_fn in ((loom, fn_loom, loom.autograd.grad), (torch, fn_torch, torch.autograd.grad)):
        xt, vt = lib.tensor(x), lib.tensor(v)
        xt.requires_grad_(True)
        vt.requires_grad_(True)
        (gx,) = grad_fn(fn(xt), [xt], grad_outputs=[vt], create_graph=True)
        outs = grad_fn((gx * lib.tensor(w) * xt).sum(), [vt, xt], allow_unused=True)
        results.append([None if o is None else o.detach().numpy() for o in outs])
    return results


@pytest.mark.parametrize("name", ["max_pool2d", "conv2d", "avg_pool2d"])
def test_double_backward(name):
    rng = np.random.default_rng(3)
    weight = rng.normal(size=(2, 3, 2, 2))
    fns = {
        "max_pool2d": (lambda x: F.max_pool2d(x, 2, 1), lambda x: TF.max_pool2d(x, 2, 1)),
        "conv2d": (lambda x: F.conv2d(x, loom.tensor(weight), padding=1),
                   lambda x: TF.conv2d(x, torch.tensor(weight), padding=1)),
        "avg_pool2d": (lambda x: F.avg_pool2d(x, 2, 1, 1), lambda x: TF.avg_pool2d(x, 2, 1, 1)),
    }
    (l_gv, l_gx), (t_gv, t_gx) = double_backward(*fns[name], (2, 3, 5, 4), rng)
    np.testing.assert_allclose(l_gv, t_gv, rtol=1e-10, atol=1e-10)
    if t_gx is not None and l_gx is not None:
        np.testing.assert_allclose(l_gx, t_gx, rtol=1e-10, atol=1e-10)


ERRORS = [
    (lambda: F.conv2d(loom.ones(3, 4), loom.ones(1, 1, 1, 1)), ValueError,
     r"conv2d: expected input of shape \(N, C, H, W\) or \(C, H, W\), got \(3, 4\)"),
    (lambda: F.conv2d(loom.ones(1, 3, 5, 5), loom.ones(2, 2, 3, 3)), ValueError, r"conv2d: .* has 3 channels"),
    (lambda: F.conv2d(loom.ones(1, 4, 5, 5), loom.ones(3, 2, 3, 3), groups=2), ValueError, "divisible by groups"),
    (lambda: F.conv2d(loom.ones(1, 3, 2, 2), loom.ones(2, 3, 3, 3)), ValueError, "smaller than the .*kernel size"),
    (lambda: F.conv2d(loom.ones(1, 3, 5, 5), loom.ones(2, 3, 3, 3, dtype=loom.float64)), TypeError, "same dtype"),
    (lambda: F.conv2d(loom.ones(1, 3, 5, 5), loom.ones(2, 3, 3, 3), stride=2, padding="same"), ValueError,
     "strided"),
    (lambda: F.conv2d(loom.ones(1, 3, 5, 5), loom.ones(2, 3, 3, 3), padding="full"), ValueError, "'same' or 'valid'"),
    (lambda: F.conv2d(loom.ones(1, 3, 5, 5), loom.ones(2, 3, 3, 3), loom.ones(3)), ValueError, "bias"),
    (lambda: F.conv1d(loom.ones(1, 3, 5, 5), loom.ones(2, 3, 3)), ValueError, "conv1d: expected input"),
    (lambda: F.conv_transpose2d(loom.ones(1, 3, 4, 4), loom.ones(2, 2, 3, 3)), ValueError, "has 3 channels"),
    (lambda: F.conv_transpose2d(loom.ones(1, 2, 4, 4), loom.ones(2, 2, 3, 3), stride=2, output_padding=2),
     ValueError, "smaller than either stride or dilation"),
    (lambda: F.conv_transpose2d(loom.ones(1, 2, 4, 4), loom.ones(2, 2, 3, 3), dilation=3, output_padding=1),
     NotImplementedError, "output_padding >= stride"),
    (lambda: F.max_pool2d(loom.ones(1, 3, 2, 2), 3), ValueError, "too small"),
    (lambda: F.max_pool2d(loom.ones(1, 3, 5, 5), 2, padding=2), ValueError, "half of the kernel"),
    (lambda: F.max_pool2d(loom.ones(1, 3, 5, 5), "a"), TypeError, "kernel_size"),
    (lambda: F.avg_pool2d(loom.ones(5, 5), 2), ValueError, "avg_pool2d: expected input"),
    (lambda: F.adaptive_avg_pool2d(loom.ones(1, 3, 5, 5), 0), ValueError, "positive"),
    (lambda: F.unfold(loom.ones(2, 3), 2), ValueError, "unfold: expected input"),
    (lambda: F.fold(loom.ones(1, 4, 7), (4, 4), 2), ValueError, "sliding blocks"),
    (lambda: F.layer_norm(loom.ones(2, 3), (4,)), ValueError, r"expected input with shape \(\*, 4\)"),
    (lambda: F.group_norm(loom.ones(2, 3, 4), 2), ValueError, "divisible by num_groups"),
    (lambda: F.batch_norm(loom.ones(1, 3), None, None, training=True), ValueError, "more than 1 value"),
    (lambda: F.batch_norm(loom.ones(2, 3), None, None), ValueError, "evaluation mode"),
    (lambda: F.dropout(loom.ones(2, 3), 1.5), ValueError, "between 0 and 1"),
    (lambda: F.scaled_dot_product_attention(loom.ones(2, 4), loom.ones(3, 5), loom.ones(3, 5)), ValueError,
     "last dim"),
    (lambda: F.scaled_dot_product_attention(loom.ones(2, 4), loom.ones(3, 4), loom.ones(2, 5)), ValueError,
     "same sequence length"),
    (lambda: F.scaled_dot_product_attention(loom.ones(2, 4), loom.ones(3, 4), loom.ones(3, 4),
                                            loom.ones(2, 3, dtype=loom.bool), is_causal=True), ValueError, "is_causal"),
    (lambda: F.scaled_dot_product_attention(loom.ones(2, 4), loom.ones(3, 4), loom.ones(3, 4),
                                            loom.ones(2, 3, dtype=loom.int64)), TypeError, "attn_mask"),
    (lambda: F.scaled_dot_product_attention(loom.ones(1, 3, 2, 4), loom.ones(1, 2, 3, 4), loom.ones(1, 2, 3, 4),
                                            enable_gqa=True), ValueError, "multiple"),
]


@pytest.mark.parametrize("index", range(len(ERRORS)))
def test_errors(index):
    fn, kind, pattern = ERRORS[index]
    with pytest.raises(kind, match=pattern):
        fn()
