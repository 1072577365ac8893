"""The conformance table (op_db) on a device other than the CPU: the example out-of-tree backend `vdev`
(examples/backend_plugin), whose memory the host cannot read and whose kernels run asynchronously on stream threads.

Same OpInfo entries, same samples, same PyTorch references and tolerances as test_ops.py; the harness makes the
inputs on the CPU, moves them to the device, and moves results and gradients back (each must come back on the
device). An op the device cannot run (no kernel, no composite) is listed below with the registry op its
NotImplementedError must name; a listed op that starts working, or an unlisted one that raises, fails, so the lists
cannot go stale. The listed ops are also run with the explicit CPU fallback on, which must give the same values.
"""
import warnings

import numpy as np
import pytest

import loom
from harness import check_grads, check_values, load_vdev
from op_db import OPS
from op_db.common import FLOAT32_64

OPS_BY_NAME = {op.name: op for op in OPS}

# The devices the table runs on here (the CPU's own run is test_ops.py).
DEVICES = ["vdev"]

# Per device: OpInfo name -> the registry op its forward raises NotImplementedError for (vdev claims the minimal set
# of examples/backend_plugin/src/kernels.cpp; sorting, convolution (its composite needs im2col), pooling, scans and
# nonzero have neither a vdev kernel nor a composite yet).
UNSUPPORTED = {"vdev": {
    "adaptive_avg_pool1d": "adaptive_avg_pool2d", "adaptive_avg_pool2d": "adaptive_avg_pool2d",
    "avg_pool1d": "im2col", "avg_pool2d": "im2col", "conv1d": "im2col", "conv2d": "im2col", "unfold": "im2col",
    "conv_transpose1d": "col2im", "conv_transpose2d": "col2im", "fold": "col2im",
    "max_pool1d": "max_pool2d", "max_pool1d_with_indices": "max_pool2d", "max_pool2d": "max_pool2d",
    "max_pool2d_with_indices": "max_pool2d",
    "cummax": "cummax", "cummax_nan": "cummax", "cummin": "cummin", "cummin_nan": "cummin", "cumprod": "cumprod",
    "logcumsumexp": "logcumsumexp", "logcumsumexp_double_backward": "logcumsumexp", "logcumsumexp_inf": "logcumsumexp",
    "logcumsumexp_wide": "logcumsumexp",
    "argsort": "sort_topk", "argsort_ties": "sort_topk", "kthvalue": "sort_topk", "median": "sort_topk",
    "median_nan": "sort_topk", "nanmedian": "sort_topk", "nanmedian_nan": "sort_topk", "sort": "sort_topk",
    "sort_double_backward": "sort_topk", "sort_nan": "sort_topk", "sort_ties": "sort_topk", "topk": "sort_topk",
    "topk_nan": "sort_topk", "topk_unsorted": "sort_topk",
    "masked_select": "nonzero", "nonzero": "nonzero", "nonzero_tuple": "nonzero",
}}
# Per device: OpInfo name -> the backward op that raises, for ops whose forward runs but whose gradient needs an op
# the device lacks (empty since every fused backward op has a composite).
UNSUPPORTED_BACKWARD = {"vdev": {}}
# Ops that check the device in their own code, before any dispatch (the CPU fallback cannot help them).
NOT_DISPATCHED = set()
# Listed ops that still fail with the CPU fallback on, for reasons outside the missing kernel: name -> (error, text).
FALLBACK_GAPS = {"vdev": {}}


@pytest.fixture(scope="module", params=DEVICES)
def device(request):
    assert request.param == "vdev"
    return load_vdev()


def samples(op, dtype, seed=0):
    return list(op.samples(dtype, np.random.default_rng(seed)))


def run_values(op, device, noncontiguous=False):
    for dtype in (op.dtypes[:2] if noncontiguous else op.dtypes):
        for sample in samples(op, dtype):
            check_values(op, sample, dtype, noncontiguous, device=device)
    loom._C._synchronize(loom.device(device))


def run_grads(op, device):
    for dtype in FLOAT32_64:
        for sample in samples(op, dtype):
            check_grads(op, sample, dtype, np.random.default_rng(1), device=device)


def expect_not_implemented(fn, op_name, device):
    """fn() must raise NotImplementedError naming the registry op and the device."""
    with pytest.raises(NotImplementedError) as info:
        fn()
    message = str(info.value)
    assert op_name in message and device in message, f"the error should name {op_name!r} and {device!r}: {message}"


def with_cpu_fallback(device, name, fn):
    """fn() with the device's CPU fallback on: it must pass (the fallback's values are the CPU's), unless the op is a
    known gap, which must still fail as recorded."""
    loom._C._set_cpu_fallback(device, True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # its once-per-op notice (checked in test_device_training)
            if name in FALLBACK_GAPS[device]:
                error, text = FALLBACK_GAPS[device][name]
                with pytest.raises(error, match=text):
                    fn()
            else:
                fn()
    finally:
        loom._C._set_cpu_fallback(device, False)


@pytest.mark.parametrize("name", sorted(OPS_BY_NAME))
def test_values(name, device):
    op = OPS_BY_NAME[name]
    missing = UNSUPPORTED[device].get(name)
    if missing is None:
        run_values(op, device)
        return
    expect_not_implemented(lambda: run_values(op, device), missing, device)
    if name not in NOT_DISPATCHED:
        with_cpu_fallback(device, name, lambda: run_values(op, device))


@pytest.mark.parametrize("name", sorted(n for n, op in OPS_BY_NAME.items() if op.noncontiguous))
def test_noncontiguous(name, device):
    op = OPS_BY_NAME[name]
    missing = UNSUPPORTED[device].get(name)
    if missing is None:
        run_values(op, device, noncontiguous=True)
    else:
        expect_not_implemented(lambda: run_values(op, device, noncontiguous=True), missing, device)


@pytest.mark.parametrize("name", sorted(n for n, op in OPS_BY_NAME.items() if op.grad))
def test_grads_against_torch(name, device):
    op = OPS_BY_NAME[name]
    missing = UNSUPPORTED[device].get(name) or UNSUPPORTED_BACKWARD[device].get(name)
    if missing is None:
        run_grads(op, device)
        return
    expect_not_implemented(lambda: run_grads(op, device), missing, device)
    if name not in NOT_DISPATCHED:
        with_cpu_fallback(device, name, lambda: run_grads(op, device))


def test_unsupported_lists_name_real_ops(device):
    """Every listed entry is an OpInfo of the table and every op it names is a registry op the device has no kernel
    for (so an entry cannot outlive its op, and a kernel added to the device shows up here too)."""
    unsupported = UNSUPPORTED[device] | UNSUPPORTED_BACKWARD[device]
    assert not set(UNSUPPORTED[device]) & set(UNSUPPORTED_BACKWARD[device])
    assert set(unsupported) <= set(OPS_BY_NAME), sorted(set(unsupported) - set(OPS_BY_NAME))
    registry = set(loom._C._op_names())
    for name, op in sorted(unsupported.items()):
        if name in NOT_DISPATCHED:
            continue
        assert op in registry, f"{name}: {op!r} is not a registry op"
        assert not loom._C._has_kernel(op, loom.device(device)), f"{name}: {device} has a kernel for {op} now"
    print(f"\n{device}: {len(UNSUPPORTED[device])} of {len(OPS_BY_NAME)} OpInfos unsupported forward, "
          f"{len(UNSUPPORTED_BACKWARD[device])} more in backward: {sorted(set(unsupported.values()))}")


def test_claimed_kernels_are_registered(device):
    """The ops the device claims (a sample of the minimal training set) report a kernel; the CPU-only ones do not."""
    dev = loom.device(device)
    for op in ("copy", "fill", "add", "mul", "sum", "mm", "bmm", "softmax", "log_softmax", "index_select",
               "gather", "_fused_adamw_", "_fused_sgd_"):
        assert loom._C._has_kernel(op, dev), op
    for op in ("sort_topk", "im2col", "native_layer_norm"):
        assert not loom._C._has_kernel(op, dev), op
