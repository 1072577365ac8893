"""Regression tests for crashes, overflows and silent wrong results found by an outside reliability review.

Each case calls loom and PyTorch 2.13 with the same arguments: where torch raises, loom must raise the
documented exception type (ValueError for values and shapes, IndexError for dims, TypeError for types,
RuntimeError otherwise) with a message naming the op; where torch returns, loom returns the same. Where torch
itself crashes or returns garbage, loom must raise a clear error (or match NumPy, where NumPy is exact).
Cases that used to kill the interpreter run in a child process, so a regression fails a test instead of pytest.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import loom
import loom.nn.functional as F
import torch.nn.functional as TF

BIG = [2**31, 2**62, 2**63 - 2, 2**63 - 1]


def run_child(code):
    """Runs `code` (which uses `loom` and `F`) in a fresh interpreter; returns (returncode, stdout, stderr)."""
    prelude = "import loom\nimport loom.nn.functional as F\n"
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def assert_child_raises(call, exc, match):
    """`call` (loom code) raises `exc` with a message matching `match` in a child process, which must survive."""
    code = f"""
        try:
            {call}
        except {exc.__name__} as e:
            print("RAISED", e)
        else:
            print("RETURNED")
    """
    rc, out, err = run_child(code)
    assert rc == 0, f"{call} killed the interpreter (rc {rc}): {err[-500:]}"
    assert out.startswith("RAISED"), f"{call} did not raise {exc.__name__}: {out} {err[-500:]}"
    assert match in out, f"{call}: message {out!r} does not mention {match!r}"


def torch_raises(fn):
    try:
        fn()
    except Exception:  # noqa: BLE001 - any torch error counts: we only compare raise vs return
        return True
    return False


# ---- D1: size()/stride() on a 0-d tensor ----

@pytest.mark.parametrize("call", ["size(0)", "size(-1)", "stride(0)", "stride(-1)"])
def test_size_and_stride_of_0d_tensor_raise_index_error(call):
    with pytest.raises(IndexError):
        eval(f"torch.tensor(1.0).{call}")
    assert_child_raises(f"loom.tensor(1.0).{call}", IndexError, call.split("(")[0])


def test_size_and_stride_of_1d_tensor_still_work():
    t = loom.arange(6.0)[::2]
    assert (t.size(0), t.size(-1), t.stride(0), t.stride(-1)) == (3, 3, 2, 2)


# ---- D2: nested lists holding 0-d tensors ----

def test_tensor_from_list_of_0d_tensors():
    code = """
        x = loom.tensor([loom.tensor(1.0), loom.tensor(2.5), loom.tensor(-3.0)])
        y = loom.zeros(2, 3)
        y[0] = [loom.tensor(1.0), loom.tensor(2.0), loom.tensor(3.0)]
        print(x.tolist(), y.tolist())
    """
    rc, out, err = run_child(code)
    assert rc == 0, err[-500:]
    expected_x = torch.tensor([torch.tensor(1.0), torch.tensor(2.5), torch.tensor(-3.0)]).tolist()
    y = torch.zeros(2, 3)
    y[0] = torch.tensor([torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0)])
    assert out.strip() == f"{expected_x} {y.tolist()}"


# ---- D3: as_strided bounds with overflowing extents ----

@pytest.mark.parametrize("size, stride, offset", [
    ((2,), (2**63 - 1,), 100),
    ((2,), (2**63 - 1,), 2**20),
    ((2, 3), (2**63 - 2, 1), 0),
    ((3,), (-(2**62),), 5),
])
def test_as_strided_overflowing_extent_raises(size, stride, offset):
    assert torch_raises(lambda: torch.as_strided(torch.zeros(6), size, stride, offset))
    assert_child_raises(f"loom.as_strided(loom.zeros(6), {size}, {stride}, {offset}).fill_(7.0)", ValueError,
                        "as_strided")


def test_as_strided_in_bounds_matches_torch():
    got = loom.as_strided(loom.arange(6.0), (2, 2), (3, 1), 1).tolist()
    assert got == torch.as_strided(torch.arange(6.0), (2, 2), (3, 1), 1).tolist()


# ---- D4: pooling / conv / fold / unfold geometry ----

GEOMETRY_CASES = [
    # (loom/torch expression with M = module, F = functional), cases torch rejects
    "F.avg_pool2d(M.ones(1, 2, 1), {v})",
    "F.avg_pool2d(M.ones(1, 1, 4, 4), 2, stride={v})",
    "F.avg_pool1d(M.ones(1, 1, 4), {v})",
    "F.max_pool2d(M.ones(1, 1, 4, 4), 3, dilation={v})",
    "F.max_pool2d(M.ones(1, 1, 4, 4), {v}, padding=2**30)",
    "F.fold(M.ones(4, 4), (4, 3), (4, {v}), (2, 4))",
    "F.conv1d(M.ones(1, 1, 4), M.ones(1, 1, 3), padding={v})",
    "F.conv_transpose1d(M.ones(1, 1, 4), M.ones(1, 1, 3), padding={v})",
    "F.adaptive_avg_pool1d(M.ones(1, 1, 4), {v})",
    "F.adaptive_avg_pool2d(M.ones(1, 1, 4, 4), {v})",
]


@pytest.mark.parametrize("value", [2**62, 2**63 - 1])
@pytest.mark.parametrize("expr", GEOMETRY_CASES)
def test_huge_geometry_raises_like_torch(expr, value):
    call = expr.format(v=value)
    assert torch_raises(lambda: eval(call, {"M": torch, "F": TF}))
    op = expr.split("(")[0].split(".")[1].replace("1d", "").replace("2d", "")  # 1-d ops report their 2-d core
    assert_child_raises(call.replace("M.", "loom."), ValueError, op)


# Torch returns garbage (reads out of bounds) or hangs here; loom must raise a clear error.
@pytest.mark.parametrize("call", [
    "F.conv1d(loom.ones(1, 1, 4), loom.ones(1, 1, 3), dilation=2**63 - 2)",
    "F.conv2d(loom.ones(1, 1, 4, 4), loom.ones(1, 1, 3, 3), dilation=2**62)",
    "F.unfold(loom.ones(1, 1, 4, 4), 2, dilation=2**63 - 1)",
    "F.unfold(loom.ones(1, 1, 4, 4), 2, padding=2**62)",
    "F.max_pool1d(loom.ones(1, 1, 4), 2**63 - 1)",
    "F.adaptive_avg_pool2d(loom.ones(0, 2, 4, 4), 2**63 - 1)",
])
def test_geometry_where_torch_misbehaves_raises(call):
    assert_child_raises(call, ValueError, call.split("(")[0].split(".")[1].replace("1d", "").replace("2d", ""))


def test_max_pool_with_huge_padding_does_not_hang():
    # The window start used to be advanced by a loop of padding / dilation steps (2^61 of them).
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    kernel, padding = 2**31 - 1, 2**30 - 1
    expected = TF.max_pool2d(x, kernel, stride=1, padding=padding)
    got = F.max_pool2d(loom.tensor(x.numpy()), kernel, stride=1, padding=padding)
    assert got.shape == tuple(expected.shape)
    assert got.tolist() == expected.tolist()


def test_geometry_cap_is_inclusive():
    x = loom.ones(1, 1, 4)
    # 2^31 - 1 is accepted (the output is too small, which is a different, shape error)...
    with pytest.raises(ValueError, match="too small"):
        F.avg_pool1d(x, 2**31 - 1)
    # ...2^31 is over the cap.
    with pytest.raises(ValueError, match="at most 2147483647"):
        F.avg_pool1d(x, 2**31)


# ---- D5: maximum rank ----

@pytest.mark.parametrize("expr", [
    "loom.ones(*[1] * 65)",
    "loom.ones(1).reshape([1] * 65)",
    "loom.ones(1).view([1] * 65)",
    "loom.ones(1).expand([1] * 65)",
    "loom.ones(1)[(None,) * 65]",
    "loom.ones([1] * 64).unsqueeze(0)",
    "loom.zeros([1] * 129).numpy()",
    "loom.from_numpy(np.ones([1] * 64)).reshape([1] * 65)",
    "loom.tensor(eval('[' * 65 + '1' + ']' * 65))",
])
def test_more_than_64_dims_raises(expr):
    assert_child_raises(f"import numpy as np\n            {expr}" if "np." in expr else expr, ValueError,
                        "at most 64 dimensions")


def _safetensors_file(path, rank):
    import json
    import struct
    header = json.dumps({"t": {"dtype": "F32", "shape": [1] * rank, "data_offsets": [0, 4]}}).encode()
    header += b" " * (-len(header) % 8)
    path.write_bytes(struct.pack("<Q", len(header)) + header + struct.pack("<f", 1.5))
    return path


def test_safetensors_file_with_more_than_64_dims_is_rejected(tmp_path):
    import safetensors.numpy
    path = _safetensors_file(tmp_path / "deep.safetensors", 65)
    with pytest.raises(Exception):  # the reference reader rejects it too
        safetensors.numpy.load_file(str(path))
    with pytest.raises(ValueError, match="at most 64"):
        loom.load(path)
    ok = _safetensors_file(tmp_path / "ok.safetensors", 64)
    expected = safetensors.numpy.load_file(str(ok))["t"]
    got = loom.load(ok)["t"]
    assert got.numpy().shape == expected.shape and got.numpy().ravel().tolist() == [1.5]


def test_64_dims_round_trip_numpy():
    t = loom.arange(2.0).reshape([1] * 63 + [2])
    a = t.numpy()
    assert a.ndim == 64 and a.shape == tuple(t.shape)
    assert a.ravel().tolist() == [0.0, 1.0]


# ---- D10: 0-d integer tensors as dims and sizes ----

@pytest.mark.parametrize("expr", [
    "a.sum({d})", "a.mean({d})", "a.amax({d})", "a.amin({d})", "a.std({d})", "a.var({d})", "a.any({d})",
    "a.all({d})", "a.prod({d})", "a.logsumexp({d})", "a.count_nonzero({d})",
    "M.nansum(a, {d})", "a.sum(({d}, 0))", "a.squeeze({d})", "a.flip({d})",
])
def test_0d_tensor_dim_is_used_as_int(expr):
    a_t = torch.arange(6.0).reshape(2, 3)
    a_l = loom.arange(6.0).reshape(2, 3)
    expected = eval(expr.format(d="torch.tensor(1)"), {"a": a_t, "M": torch, "torch": torch})
    got = eval(expr.format(d="loom.tensor(1)"), {"a": a_l, "M": loom, "loom": loom})
    assert got.shape == tuple(expected.shape)
    np.testing.assert_allclose(np.asarray(got.tolist(), dtype=np.float64),
                               np.asarray(expected.tolist(), dtype=np.float64), rtol=1e-6)


@pytest.mark.parametrize("expr", [
    "M.zeros(M.tensor(3))", "M.zeros(M.tensor(2), 3)", "M.ones(6).reshape(M.tensor(6))",
    "M.ones(6).view(M.tensor(2), M.tensor(3))", "M.ones(2, 3).permute(M.tensor(1), 0)",
    "M.ones(2, 3).split(M.tensor(1), M.tensor(1))[0]", "M.ones(2, 3).sum(np.int64(1))",
])
def test_0d_tensor_size_is_used_as_int(expr):
    expected = eval(expr, {"M": torch, "np": np})
    got = eval(expr, {"M": loom, "np": np})
    assert got.shape == tuple(expected.shape)


def test_float_0d_tensor_dim_raises_type_error():
    with pytest.raises(TypeError):
        torch.arange(6.0).reshape(2, 3).sum(torch.tensor(1.0))
    with pytest.raises(TypeError, match="sum"):
        loom.arange(6.0).reshape(2, 3).sum(loom.tensor(1.0))


def test_iterating_a_0d_tensor_raises():
    with pytest.raises(TypeError):
        iter(torch.tensor(1))
    with pytest.raises(TypeError, match="0-d"):
        iter(loom.tensor(1))
    assert [int(v) for v in loom.tensor([4, 5])] == [4, 5]


# ---- D12: shape arithmetic overflow and unchecked narrowing ----

def test_narrow_with_huge_length_raises():
    with pytest.raises(RuntimeError):
        torch.ones(2, 3).narrow(1, 1, 2**63 - 1)
    with pytest.raises(IndexError, match="narrow"):
        loom.ones(2, 3).narrow(1, 1, 2**63 - 1)


@pytest.mark.parametrize("key", [slice(None, None, 2**63 - 1), slice(2**63 - 2, None), slice(-(2**63), 2**63 - 1, 2**62),
                                 slice(1, None, 2**62)])
def test_slice_with_huge_bounds_matches_numpy(key):
    # torch 2.13 raises "Storage size calculation overflowed with sizes=[-1, 3]" for the first: numpy is exact.
    a = np.arange(6.0).reshape(2, 3)
    got = loom.tensor(a)[key]
    assert got.shape == a[key].shape
    assert got.tolist() == a[key].tolist()


@pytest.mark.parametrize("start, end, step", [(0, 2**63 - 2, (2**63 - 2) // 3), (-(2**63), 2**63 - 1, 2**62),
                                              (2**63 - 1, -(2**63), -(2**62)), (5, 2**63 - 1, 2**62)])
def test_integer_arange_near_int64_limits_matches_numpy(start, end, step):
    # torch 2.13 raises or returns an empty tensor for some of these; the exact answer fits int64.
    expected = np.arange(start, end, step, dtype=np.int64)
    got = loom.arange(start, end, step)
    assert got.tolist() == expected.tolist()


def test_randperm_of_huge_n_raises():
    assert torch_raises(lambda: torch.randperm(2**63 - 1))
    with pytest.raises((ValueError, MemoryError), match="randperm|empty|memory"):
        loom.randperm(2**63 - 1)


@pytest.mark.parametrize("values, dtype", [([300, -1], "uint8"), ([-256], "uint8"), ([2**31], "int32"),
                                           ([-129], "int8"), ([40000], "int16"), ([1.5e10], "int32"),
                                           ([float("nan")], "int32")])
def test_tensor_values_that_overflow_the_dtype_raise(values, dtype):
    with pytest.raises(RuntimeError, match="overflow"):
        torch.tensor(values, dtype=getattr(torch, dtype))
    with pytest.raises(ValueError, match="tensor: .*without overflow|tensor: cannot convert"):
        loom.tensor(values, dtype=getattr(loom, dtype))


@pytest.mark.parametrize("values, dtype", [([-1, 255], "uint8"), ([-255], "uint8"), ([2**31 - 1, -(2**31)], "int32"),
                                           ([2**63 - 1], "int64"), ([True, 5], "uint8"), ([1e39], "float32"),
                                           ([70000.0], "float16"), ([3, 0], "bool")])
def test_tensor_values_that_fit_match_torch(values, dtype):
    expected = torch.tensor(values, dtype=getattr(torch, dtype)).tolist()
    assert loom.tensor(values, dtype=getattr(loom, dtype)).tolist() == expected


@pytest.mark.parametrize("shape", [(0, 2**62, 2**62), (2**62, 0, 2**62)])
def test_zero_size_tensor_with_unaddressable_strides(shape):
    # torch raises "Stride calculation overflowed" for the first; loom raises or behaves, never wraps.
    try:
        t = loom.zeros(*shape)
    except ValueError as e:
        assert "overflow" in str(e)
        return
    assert t.numel() == 0
    assert (t + 1).shape == shape
    assert t.sum().item() == 0


# ---- D13: raw C++ exception text ----

@pytest.mark.parametrize("expr, op", [
    ("loom.ones(4).split(loom.ones(2))", "split"),
    ("loom.ones(3).squeeze(1.5)", "squeeze"),
    ("loom.clamp(loom.ones(3), max=(1, 2))", "clamp"),
    ("loom.meshgrid(loom.ones(2), 5)", "meshgrid"),
    ("loom.einsum('i,i', 5)", "einsum"),
    ("loom.broadcast_shapes((2,), 'a')", "broadcast_shapes"),
    ("loom.ones(3).to(5)", "to"),
    ("loom.nn.functional.gaussian_nll_loss(loom.ones(3), loom.ones(3), 'a')", "gaussian_nll_loss"),
    ("loom.broadcast_tensors(loom.ones(2), 'a')", "broadcast_tensors"),
])
def test_bad_argument_types_raise_type_error_naming_the_op(expr, op):
    with pytest.raises(TypeError) as info:
        eval(expr, {"loom": loom})
    assert "bad_cast" not in str(info.value)
    assert op in str(info.value)


@pytest.mark.parametrize("expr, op", [
    ("loom.ones(2, 3).sum(10**30)", "sum"),
    ("F.layer_norm(loom.ones(2, 3), (10**30,))", "layer_norm"),
    ("F.rms_norm(loom.ones(2, 3), (10**30,))", "rms_norm"),
    ("loom.zeros(10**30)", "zeros"),
])
def test_ints_beyond_int64_raise_value_error_naming_the_op(expr, op):
    with pytest.raises(ValueError, match=op):
        eval(expr, {"loom": loom, "F": F})


def test_from_numpy_of_a_numpy_scalar_says_it_is_not_an_array():
    with pytest.raises(TypeError):
        torch.from_numpy(np.float32(1))
    with pytest.raises(TypeError, match="not an array"):
        loom.from_numpy(np.float32(1))


# ---- D16: in-place writes into self-overlapping views ----

@pytest.mark.parametrize("expr", [
    "e.mul_(M.tensor([[2.0], [3.0]]))", "e.add_(1)", "e.copy_(M.ones(2, 3))", "e.clamp_(0, 1)", "e.exp_()",
    "e.relu_()", "e.uniform_()", "e.scatter_(1, M.tensor([[0], [0]]), 2.0)",
    "e.__setitem__((slice(None), slice(None)), M.arange(6.0).reshape(2, 3))",
])
def test_in_place_on_expanded_view_raises_like_torch(expr):
    with pytest.raises(RuntimeError, match="more than one element"):
        eval(expr, {"e": torch.ones(1, 3).expand(2, 3), "M": torch})
    base = loom.ones(1, 3)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        eval(expr, {"e": base.expand(2, 3), "M": loom})
    assert base.tolist() == [[1.0, 1.0, 1.0]]  # nothing was written


def test_in_place_on_strided_views_still_writes():
    # Views whose elements do not share memory (every other column, a transpose) are written as before.
    t, l = torch.arange(18.0).reshape(2, 9), loom.arange(18.0).reshape(2, 9)
    for x in (t, l):
        x[:, ::2].mul_(3)
        x.t().add_(1)
    assert l.tolist() == t.tolist()


@pytest.mark.parametrize("expr", ["e.fill_(7.0)", "e.zero_()", "e[0].add_(1)",
                                  "M.as_strided(M.zeros(6), (2, 2), (1, 1)).add_(1)"])  # overlap torch does not decide: accepted by both
def test_well_defined_writes_into_expanded_views_match_torch(expr):
    t_base, l_base = torch.ones(1, 3), loom.ones(1, 3)
    eval(expr, {"e": t_base.expand(2, 3), "M": torch})
    eval(expr, {"e": l_base.expand(2, 3), "M": loom})
    assert l_base.tolist() == t_base.tolist()


# ---- D18: integer kernels wrap (defined behaviour), uninitialised bools are valid ----

@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_overflow_wraps_like_torch(dtype):
    info = np.iinfo(dtype)
    a = [int(info.max), int(info.min), int(info.max) // 2 + 7]
    b = [5, -5, 3]
    for M in (torch, loom):
        x, y = M.tensor(a, dtype=getattr(M, dtype)), M.tensor(b, dtype=getattr(M, dtype))
        results = [(x + y).tolist(), (x - y).tolist(), (x * y).tolist(), x.sum().item(), x.cumsum(0).tolist(),
                   x.cumprod(0).tolist(), M.nansum(x).item(), (x @ y).item()]
        if M is torch:
            expected = results
    assert results == expected


def test_empty_bool_tensor_holds_valid_bools():
    t = loom.empty(1000, dtype=loom.bool)
    assert set(t.tolist()) <= {False, True}
    assert t.to(loom.uint8).max().item() <= 1


# ---- Signed-overflow sites the API fuzzer found (each reproduced from one line under UBSan) ----

@pytest.mark.parametrize("expr", ["M.ones(3).repeat(2**63 - 2)", "M.ones(3).tile(2**63 - 2)", "M.ones(2, 3).repeat(2**62, 1)",
                                  "M.ones(2, 3).tile((1, 2**62))"])
def test_repeat_with_overflowing_size_raises_like_torch(expr):
    assert torch_raises(lambda: eval(expr, {"M": torch}))
    assert_child_raises(expr.replace("M.", "loom."), ValueError, "repeat")


def test_repeat_of_zero_size_tensor_by_huge_count_matches_torch():
    for expr in ("M.ones(0).repeat(2**63 - 2)", "M.ones(1, 0).tile((2**62, 3))"):
        assert tuple(eval(expr, {"M": loom}).shape) == tuple(eval(expr, {"M": torch}).shape)


def test_chunk_into_huge_number_of_chunks():
    # ceil(4 / chunks) used to be computed as (4 + chunks - 1) / chunks, which overflows for chunks = 2^63 - 1
    # (torch 2.13 overflows there too and raises "split_size can only be 0"); the exact answer is torch's for
    # any chunks >= 4: four pieces of one row.
    expected = [c.tolist() for c in torch.arange(16.0).reshape(4, 4).chunk(2**62)]
    assert len(expected) == 4
    for chunks in (2**62, 2**63 - 1):
        code = f"print([c.tolist() for c in loom.arange(16.0).reshape(4, 4).chunk({chunks})])"
        rc, out, err = run_child(code)
        assert rc == 0, err[-500:]
        assert out.strip() == str(expected)


@pytest.mark.parametrize("sizes", [(4, 2**63 - 2, 2**62), (2**63 - 1, 2**63 - 1, 5)])
def test_split_sizes_whose_sum_overflows_raise_like_torch(sizes):
    assert torch_raises(lambda: torch.ones(5).split(sizes))
    assert_child_raises(f"loom.ones(5).split({sizes})", ValueError, "split")


def test_split_sizes_whose_sum_wraps_to_the_size_raise():
    # 4 * 2^62 + 5 wraps to 5: torch 2.13 accepts it and returns a 5-element first piece "of size 2^62".
    assert_child_raises("loom.ones(5).split((2**62, 2**62, 2**62, 2**62, 5))", ValueError, "split")


SLICE_KEYS = ["(slice(None, None, 2**63 - 1),)", "(slice(1, None, 2**63 - 1),)", "(slice(None), slice(None, None, 2**63 - 1))",
              "(slice(None), slice(2, None, 2**62))", "(slice(None, None, 2**62), slice(None, None, 2**63 - 1))"]


@pytest.mark.parametrize("key", SLICE_KEYS)
def test_setitem_and_slice_backward_with_huge_step_match_numpy(key):
    # torch 2.13 raises "Storage size calculation overflowed" for some of these; NumPy is exact.
    a = np.arange(6.0).reshape(2, 3)
    index = eval(key)
    written = a.copy()
    written[index] = -1.0
    grad = np.zeros_like(a)
    grad[index] = 1.0
    code = f"""
        import numpy as np
        x = loom.tensor(np.arange(6.0).reshape(2, 3))
        x[{key}] = -1.0
        y = loom.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
        y[{key}].sum().backward()
        print(x.tolist(), y.grad.tolist())
    """
    rc, out, err = run_child(code)
    assert rc == 0, err[-500:]
    assert out.strip() == f"{written.tolist()} {grad.tolist()}"


def test_slice_with_huge_step_matches_torch_where_torch_can():
    t = torch.arange(6.0).reshape(2, 3)
    l = loom.arange(6.0).reshape(2, 3)
    assert l[1::2**63 - 1].tolist() == t[1::2**63 - 1].tolist()
    assert l[:, 2::2**62].tolist() == t[:, 2::2**62].tolist()


@pytest.mark.parametrize("pads", [[-1, 2**63 - 1], [2**63 - 1, 2**63 - 1], [2**63 - 1, -1], [-(2**63), 2**63 - 1],
                                  [0, 0, 2**63 - 1, 1]])
def test_pad_whose_size_overflows_raises_like_torch(pads):
    assert torch_raises(lambda: TF.pad(torch.ones(4, 2), pads))
    assert_child_raises(f"F.pad(loom.ones(4, 2), {pads})", ValueError, "pad" if -(2**63) not in pads else "full")


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64"])
@pytest.mark.parametrize("op", ["neg", "abs", "__neg__", "__abs__"])
def test_integer_neg_and_abs_of_the_minimum_wrap_like_torch(op, dtype):
    info = np.iinfo(dtype)
    values = [int(info.min), int(info.min) + 1, -1, 0, 7, int(info.max)]
    expected = getattr(torch.tensor(values, dtype=getattr(torch, dtype)), op)().tolist()
    code = f"print(loom.tensor({values}, dtype=loom.{dtype}).{op}().tolist())"
    rc, out, err = run_child(code)
    assert rc == 0, err[-500:]
    assert out.strip() == str(expected)


def test_float_neg_keeps_signed_zero():
    got = loom.neg(loom.tensor([0.0, -0.0, 1.5]))
    expected = torch.neg(torch.tensor([0.0, -0.0, 1.5]))
    assert np.signbit(got.numpy()).tolist() == np.signbit(expected.numpy()).tolist()


def test_reduction_over_zero_size_tensor_with_huge_dims():
    # torch 2.13 refuses to create this tensor (its element count is computed before seeing the 0); loom allows
    # it, so its reductions and their backward must not multiply the other dims into int64 overflow.
    code = """
        x = loom.full((2**62, 64, 2**32 - 1, 0), 1.0, requires_grad=True)
        s = x.sum()
        s.backward()
        print(s.item(), tuple(x.grad.shape), x.grad.numel(), tuple(x.mean((1, 2)).shape), tuple(x.sum((0, 1)).shape),
              tuple(x.amax((0, 1, 2)).shape), tuple(x.var((0, 1)).shape))
    """
    rc, out, err = run_child(code)
    assert rc == 0, err[-500:]
    assert out.strip() == f"0.0 {(2**62, 64, 2**32 - 1, 0)} 0 {(2**62, 0)} {(2**32 - 1, 0)} {(0,)} {(2**32 - 1, 0)}"
    # The same reductions on a shape torch can create agree with torch.
    shape = (2**20, 64, 3, 0)
    t, l = torch.ones(shape, requires_grad=True), loom.ones(shape, requires_grad=True)
    t.sum().backward()
    l.sum().backward()
    assert tuple(l.grad.shape) == tuple(t.grad.shape)
    for dims in [(2, 3), (1, 3), (0, 1), 3]:
        assert tuple(l.sum(dims).shape) == tuple(t.sum(dims).shape)
        assert tuple(l.mean(dims).shape) == tuple(t.mean(dims).shape)
    assert tuple(l.amax((0, 1, 2)).shape) == tuple(t.amax((0, 1, 2)).shape)


def test_flatten_of_zero_size_tensor_with_huge_dims():
    # (2^62, 4, 0): flattening the last two dims gives (2^62, 0); the first two would be 2^64 elements long.
    rc, out, err = run_child("print(tuple(loom.ones(2**62, 4, 0).flatten(1).shape))")
    assert rc == 0, err[-500:]
    assert out.strip() == str((2**62, 0))
    assert_child_raises("loom.ones(2**62, 4, 0).flatten(0, 1)", ValueError, "flatten")


@pytest.mark.parametrize("expr", ["M.ones(0, 2**62).tril()", "M.ones(2**62, 0).triu(3)", "M.ones(0, 2**63 - 1).roll(-5, 1)",
                                  "M.ones(0, 2**63 - 1).roll(2**63 - 1, 1)", "M.ones(2, 0, 2**62).roll(2**62 + 3, 2)"])
def test_shape_ops_on_zero_size_tensors_with_huge_dims_match_torch(expr):
    expected = eval(expr, {"M": torch})
    rc, out, err = run_child(f"print(tuple({expr.replace('M.', 'loom.')}.shape))")
    assert rc == 0, err[-500:]
    assert out.strip() == str(tuple(expected.shape))


# Found by auditing the same class (sizes near 2^63, mostly the other dims of zero-size tensors).
@pytest.mark.parametrize("expr", [
    "M.ones(5).split(2**63 - 1)", "M.ones(5).split(2**63 - 3)",  # start + split_size overflowed
    "M.ones(2**62, 0).mean(0)", "M.ones(0, 2**62).mean(1)",  # the count of reduced elements
    "M.ones(2**62, 0).cumsum(0)", "M.ones(2**62, 0).softmax(0)", "M.ones(2**62, 0).amax(0)", "M.ones(2**62, 0).max(0)[0]",
    "M.ones(0, 2**62).sum(1)", "M.ones(2**62, 0).logsumexp(0)", "M.ones(2**62, 0).argmax(0)", "M.ones(2**62, 0).prod(0)",
    "M.einsum('ij,jk->ik', M.ones(0, 2**62), M.ones(2**62, 0))",
    "M.ones(0, 2**62)[M.tensor([], dtype=M.int64), M.tensor([1])]",
    "M.cat([M.ones(0, 2**62), M.ones(0, 2**62 - 1)], 1)",
])
def test_huge_sizes_of_zero_size_tensors_match_torch(expr):
    expected = eval(expr, {"M": torch})
    rc, out, err = run_child(f"r = {expr.replace('M.', 'loom.')}\nr = tuple(r) if isinstance(r, (tuple, list)) else (r,)\n"
                             "print([(tuple(t.shape), t.tolist() if t.numel() else None) for t in r])")
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert rc == 0, err[-500:]
    assert out.strip() == str([(tuple(t.shape), t.tolist() if t.numel() else None) for t in expected])


@pytest.mark.parametrize("expr, op", [("M.cat([M.ones(0, 2**62), M.ones(0, 2**62)], 1)", "cat"),
                                      ("F.one_hot(M.tensor([2**63 - 1]))", "one_hot")])
def test_sizes_past_int64_raise_like_torch(expr, op):
    assert torch_raises(lambda: eval(expr, {"M": torch, "F": TF}))
    assert_child_raises(expr.replace("M.", "loom."), ValueError, op)


def test_gaussian_nll_loss_var_sizes_summing_past_int64_raise():
    # The sizes of var's mismatched dims must sum to 1 (PyTorch sums them as Python ints).
    assert_child_raises("F.gaussian_nll_loss(loom.ones(1, 1, 1), loom.ones(1, 1, 1), loom.ones(2**62, 2**62, 0))",
                        ValueError, "var is of incorrect size")
    assert torch_raises(lambda: TF.gaussian_nll_loss(torch.ones(2, 3), torch.ones(2, 3), torch.ones(2, 2)))
    expected = TF.gaussian_nll_loss(torch.ones(2, 3), torch.zeros(2, 3), torch.ones(2, 1)).item()
    assert F.gaussian_nll_loss(loom.ones(2, 3), loom.zeros(2, 3), loom.ones(2, 1)).item() == pytest.approx(expected)


# Found by a 300,000-call ASan fuzz run: byte counts near 2^64 wrapped in the allocator's size rounding, so a
# tiny block was handed out and filled past its end.
@pytest.mark.parametrize("expr", ["M.empty(2**63 - 2, dtype=M.float16)", "M.eye(2**31 - 1)",
                                  "M.linspace(0, 1, 2**63 - 1, dtype=M.bfloat16)", "M.zeros(2**61, dtype=M.float32)"])
def test_storage_of_more_than_int64_bytes_raises_like_torch(expr):
    assert torch_raises(lambda: eval(expr, {"M": torch}))
    assert_child_raises(expr.replace("M.", "loom."), ValueError, "too large")


@pytest.mark.parametrize("nbytes", [2**62 + 2**61, 2**63 - 64, 2**62])
def test_allocation_beyond_any_memory_is_refused(nbytes):
    assert torch_raises(lambda: torch.empty(nbytes, dtype=torch.uint8))
    code = f"""
        try:
            loom.empty({nbytes}, dtype=loom.uint8).fill_(1)
        except (RuntimeError, MemoryError) as e:
            print("RAISED", e)
    """
    rc, out, err = run_child(code)
    assert rc == 0, err[-500:]
    assert out.startswith("RAISED") and "memory" in out
