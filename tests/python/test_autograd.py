"""The autograd engine against PyTorch: accumulation, retain_graph, grad(), higher order, grad modes, hooks,
version counters, in-place ops on non-leaves and views, graph structure."""
import numpy as np
import pytest
import torch

import loom

RNG = np.random.default_rng(0)


def arr(*shape):
    return RNG.standard_normal(shape).astype(np.float64)


def pair(a, requires_grad=True):
    """The same values as a loom and a torch leaf (float64)."""
    lt = loom.tensor(a, dtype=loom.float64, requires_grad=requires_grad)
    tt = torch.tensor(a, dtype=torch.float64, requires_grad=requires_grad)
    return lt, tt


def close(lt, tt, tol=1e-10):
    assert lt is not None and tt is not None, (lt, tt)
    got = lt.detach().numpy()
    want = tt.detach().numpy()
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


# ---- accumulation, gradient=, retain_graph ----

def test_leaf_accumulates_over_two_backward_calls():
    a = arr(3, 4)
    lx, tx = pair(a)
    for _ in range(2):
        (lx * lx).sum().backward()
        (tx * tx).sum().backward()
    close(lx.grad, tx.grad)


def test_backward_with_gradient_argument():
    a, g = arr(2, 3), arr(2, 3)
    lx, tx = pair(a)
    (lx * 3.0).exp().backward(gradient=loom.tensor(g, dtype=loom.float64))
    (tx * 3.0).exp().backward(gradient=torch.tensor(g))
    close(lx.grad, tx.grad)


def test_backward_non_scalar_without_gradient_raises():
    lx, _ = pair(arr(2, 3))
    with pytest.raises(RuntimeError, match="scalar"):
        (lx * 2).backward()


def test_backward_gradient_shape_mismatch_raises():
    lx, _ = pair(arr(2, 3))
    with pytest.raises((ValueError, RuntimeError)):
        (lx * 2).backward(gradient=loom.ones(3, 2, dtype=loom.float64))


def test_second_backward_without_retain_graph_raises():
    lx, _ = pair(arr(3))
    y = (lx.exp() * lx).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_retain_graph_allows_second_backward():
    a = arr(3)
    lx, tx = pair(a)
    ly = (lx.exp() * lx).sum()
    ty = (tx.exp() * tx).sum()
    ly.backward(retain_graph=True)
    ly.backward()
    ty.backward(retain_graph=True)
    ty.backward()
    close(lx.grad, tx.grad)


def test_backward_on_tensor_without_grad_raises():
    x = loom.ones(3)
    with pytest.raises(RuntimeError):
        x.sum().backward()


def test_autograd_backward_function_multiple_roots():
    a = arr(4)
    lx, tx = pair(a)
    loom.autograd.backward([(lx * 2).sum(), (lx * lx).sum()])
    torch.autograd.backward([(tx * 2).sum(), (tx * tx).sum()])
    close(lx.grad, tx.grad)


# ---- autograd.grad ----

def test_grad_returns_tuple_and_leaves_grad_untouched():
    a = arr(3)
    lx, tx = pair(a)
    (lg,) = loom.autograd.grad((lx.sin() * lx).sum(), lx)
    (tg,) = torch.autograd.grad((tx.sin() * tx).sum(), tx)
    close(lg, tg)
    assert lx.grad is None


def test_grad_multiple_inputs():
    a, b = arr(3), arr(3)
    lx, tx = pair(a)
    ly, ty = pair(b)
    lg = loom.autograd.grad((lx * ly + lx).sum(), [lx, ly])
    tg = torch.autograd.grad((tx * ty + tx).sum(), [tx, ty])
    assert len(lg) == 2
    close(lg[0], tg[0])
    close(lg[1], tg[1])


def test_grad_of_intermediate_tensor():
    a = arr(3)
    lx, tx = pair(a)
    lh, th = lx * 2, tx * 2
    (lg,) = loom.autograd.grad((lh * lh).sum(), lh)
    (tg,) = torch.autograd.grad((th * th).sum(), th)
    close(lg, tg)


def test_grad_allow_unused():
    lx, _ = pair(arr(3))
    lz, _ = pair(arr(3))
    y = (lx * 2).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        loom.autograd.grad(y, [lx, lz], retain_graph=True)
    gx, gz = loom.autograd.grad(y, [lx, lz], allow_unused=True)
    assert gz is None
    np.testing.assert_allclose(gx.numpy(), 2.0)


def test_grad_with_grad_outputs():
    a, g = arr(2, 2), arr(2, 2)
    lx, tx = pair(a)
    (lg,) = loom.autograd.grad(lx * lx, lx, grad_outputs=loom.tensor(g, dtype=loom.float64))
    (tg,) = torch.autograd.grad(tx * tx, tx, grad_outputs=torch.tensor(g))
    close(lg, tg)


@pytest.mark.parametrize("name", ["cube", "tanh", "exp_mul", "sigmoid", "div"])
def test_double_backward(name):
    fns = {
        "cube": lambda x: x ** 3,
        "tanh": lambda x: x.tanh(),
        "exp_mul": lambda x: x.exp() * x,
        "sigmoid": lambda x: x.sigmoid(),
        "div": lambda x: 1.0 / (x * x + 1.0),
    }
    f = fns[name]
    a = arr(5)
    lx, tx = pair(a)
    (lg,) = loom.autograd.grad(f(lx).sum(), lx, create_graph=True)
    (tg,) = torch.autograd.grad(f(tx).sum(), tx, create_graph=True)
    close(lg, tg)
    assert lg.requires_grad
    (lgg,) = loom.autograd.grad(lg.sum(), lx)
    (tgg,) = torch.autograd.grad(tg.sum(), tx)
    close(lgg, tgg)


def test_triple_backward_cube():
    lx, tx = pair(arr(4))
    lg = loom.autograd.grad((lx ** 3).sum(), lx, create_graph=True)[0]
    tg = torch.autograd.grad((tx ** 3).sum(), tx, create_graph=True)[0]
    lgg = loom.autograd.grad(lg.sum(), lx, create_graph=True)[0]
    tgg = torch.autograd.grad(tg.sum(), tx, create_graph=True)[0]
    close(lgg, tgg)
    close(loom.autograd.grad(lgg.sum(), lx)[0], torch.autograd.grad(tgg.sum(), tx)[0])


@pytest.mark.filterwarnings("ignore:Using backward")
def test_backward_create_graph_then_backward_grad():
    lx, tx = pair(arr(3))
    (lx ** 3).sum().backward(create_graph=True)
    (tx ** 3).sum().backward(create_graph=True)
    close(lx.grad, tx.grad)
    assert lx.grad.requires_grad
    (lgg,) = loom.autograd.grad(lx.grad.sum(), lx)
    (tgg,) = torch.autograd.grad(tx.grad.sum(), tx)
    close(lgg, tgg)


# ---- grad modes ----

def test_no_grad_context():
    lx, _ = pair(arr(3))
    with loom.no_grad():
        y = lx * 2
        assert not loom.is_grad_enabled()
    assert loom.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None


def test_no_grad_decorator_and_enable_grad():
    lx, _ = pair(arr(3))

    @loom.no_grad()
    def f(x):
        return x * 2

    assert not f(lx).requires_grad
    with loom.no_grad():
        with loom.enable_grad():
            assert (lx * 2).requires_grad
        assert not (lx * 2).requires_grad

    @loom.enable_grad()
    def g(x):
        return x * 2

    with loom.no_grad():
        assert g(lx).requires_grad


def test_set_grad_enabled():
    lx, _ = pair(arr(3))
    with loom.set_grad_enabled(False):
        assert not (lx * 2).requires_grad
    assert loom.is_grad_enabled()
    loom.set_grad_enabled(False)
    try:
        assert not (lx * 2).requires_grad
    finally:
        loom.set_grad_enabled(True)
    assert (lx * 2).requires_grad


def test_grad_mode_restored_after_exception():
    with pytest.raises(ZeroDivisionError):
        with loom.no_grad():
            _ = 1 / 0
    assert loom.is_grad_enabled()


# ---- detach, requires_grad_ ----

def test_detach_shares_storage_and_cuts_history():
    lx, _ = pair(arr(3))
    y = lx * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert d.data_ptr() == y.data_ptr()
    z = (d * lx).sum()
    z.backward()
    np.testing.assert_allclose(lx.grad.numpy(), y.detach().numpy())


def test_requires_grad_on_int_tensor_raises_type_error():
    x = loom.tensor([1, 2, 3])
    with pytest.raises(TypeError):
        x.requires_grad_()
    with pytest.raises(TypeError):
        x.requires_grad = True
    with pytest.raises(TypeError):
        loom.tensor([1, 2], requires_grad=True)


def test_requires_grad_false_on_non_leaf_raises():
    lx, _ = pair(arr(3))
    y = lx * 2
    with pytest.raises(RuntimeError):
        y.requires_grad_(False)
    y.requires_grad_(True)  # allowed (no-op), like torch


def test_requires_grad_flag_propagation():
    lx, _ = pair(arr(3))
    c = loom.ones(3, dtype=loom.float64)
    assert (c * 2).requires_grad is False
    assert (c * lx).requires_grad is True
    assert (c * lx).is_leaf is False
    assert lx.is_leaf and c.is_leaf


# ---- hooks, retain_grad ----

def test_leaf_hook_sees_and_replaces_grad():
    a = arr(3)
    lx, tx = pair(a)
    seen = []
    lx.register_hook(lambda g: seen.append(g.numpy().copy()))
    lx.register_hook(lambda g: g * 10)
    tx.register_hook(lambda g: g * 10)
    (lx * lx).sum().backward()
    (tx * tx).sum().backward()
    close(lx.grad, tx.grad)
    np.testing.assert_allclose(seen[0], 2 * a)


def test_non_leaf_hook_replaces_grad():
    a = arr(3)
    lx, tx = pair(a)
    ly, ty = lx * 2, tx * 2
    ly.register_hook(lambda g: g + 1)
    ty.register_hook(lambda g: g + 1)
    (ly * ly).sum().backward()
    (ty * ty).sum().backward()
    close(lx.grad, tx.grad)


def test_hook_handle_remove():
    lx, _ = pair(arr(3))
    handle = lx.register_hook(lambda g: g * 100)
    handle.remove()
    (lx * 1.0).sum().backward()
    np.testing.assert_allclose(lx.grad.numpy(), 1.0)
    ly = lx * 2
    h2 = ly.register_hook(lambda g: g * 100)
    h2.remove()
    lx.grad = None
    (ly * 1.0).sum().backward()
    np.testing.assert_allclose(lx.grad.numpy(), 2.0)


def test_hook_handle_context_manager():
    lx, _ = pair(arr(3))
    with lx.register_hook(lambda g: g * 100):
        pass
    (lx * 1.0).sum().backward()
    np.testing.assert_allclose(lx.grad.numpy(), 1.0)


def test_hook_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError):
        loom.ones(2).register_hook(lambda g: g)


def test_retain_grad():
    a = arr(3)
    lx, tx = pair(a)
    ly, ty = lx * 3, tx * 3
    ly.retain_grad()
    ty.retain_grad()
    assert ly.retains_grad
    (ly * ly).sum().backward()
    (ty * ty).sum().backward()
    close(ly.grad, ty.grad)
    lz = lx * 3
    (lz * lz).sum().backward()
    assert lz.grad is None


# ---- version counter ----

def test_inplace_modification_of_saved_tensor_raises():
    lx, _ = pair(arr(3))
    y = lx * 2
    z = y * y  # saves y
    y.add_(1)
    with pytest.raises(RuntimeError, match="in-place|version"):
        z.sum().backward()


def test_inplace_modification_of_saved_output_raises():
    lx, _ = pair(arr(3))
    y = lx.exp()  # saves its output
    y.mul_(2)
    with pytest.raises(RuntimeError, match="in-place|version"):
        (y * 1.0).sum().backward()


def test_version_counter_bumps():
    x = loom.zeros(3)
    v0 = x._version
    x.add_(1)
    assert x._version == v0 + 1
    v = x[0:2] if hasattr(x, "__getitem__") else x.narrow(0, 0, 2)
    v.mul_(2)
    assert x._version == v0 + 2


# ---- in-place ops on non-leaves ----

@pytest.mark.parametrize("op", ["add_", "mul_", "relu_", "clamp_", "sub_", "div_", "tanh_", "exp_"])
def test_inplace_on_non_leaf_matches_torch(op):
    a = arr(4, 3)
    lx, tx = pair(a)

    def run(x):
        y = x * 2
        if op in ("add_", "mul_", "sub_", "div_"):
            getattr(y, op)(3.0)
        elif op == "clamp_":
            y.clamp_(-0.5, 0.7)
        else:
            getattr(y, op)()
        return (y * y).sum() + y.sum()

    run(lx).backward()
    run(tx).backward()
    close(lx.grad, tx.grad)


def test_inplace_with_tensor_operand_requiring_grad():
    a, b = arr(3), arr(3)
    lx, tx = pair(a)
    lw, tw = pair(b)
    ly, ty = lx * 1.0, tx * 1.0
    ly.mul_(lw)
    ty.mul_(tw)
    ly.add_(lw)
    ty.add_(tw)
    (ly * ly).sum().backward()
    (ty * ty).sum().backward()
    close(lx.grad, tx.grad)
    close(lw.grad, tw.grad)


def test_inplace_chain_then_saved_by_later_op():
    lx, tx = pair(arr(5))
    for x in (lx, tx):
        y = x.sin()  # saves x, not y
        y.mul_(2).add_(1)
        z = y.tanh()
        z.sum().backward()
    close(lx.grad, tx.grad)


def test_inplace_on_narrow_view_of_non_leaf():
    a = arr(4, 3)
    lx, tx = pair(a)
    for x in (lx, tx):
        y = x * 1
        y.narrow(0, 1, 2).mul_(3)
        (y * y).sum().backward()
    close(lx.grad, tx.grad)


def test_inplace_on_select_view_of_non_leaf():
    a = arr(4, 3)
    lx, tx = pair(a)
    for x in (lx, tx):
        y = x * 1
        y.select(0, 1).add_(1)
        y.select(1, 2).mul_(2.5)
        (y * y * y).sum().backward()
    close(lx.grad, tx.grad)


def test_inplace_on_view_then_use_view():
    a = arr(4, 3)
    lx, tx = pair(a)
    outs = []
    for x in (lx, tx):
        y = x * 1
        v = y.narrow(1, 0, 2)
        v.mul_(2)
        outs.append(v.detach().numpy().copy())
        ((v * v).sum() + (y * 3).sum()).backward()
    np.testing.assert_allclose(outs[0], outs[1])
    close(lx.grad, tx.grad)


def test_inplace_on_view_with_grad_operand():
    a, b = arr(4, 3), arr(3)
    lx, tx = pair(a)
    lw, tw = pair(b)
    for x, w in ((lx, lw), (tx, tw)):
        y = x * 1
        y.select(0, 2).mul_(w)
        (y * y).sum().backward()
    close(lx.grad, tx.grad)
    close(lw.grad, tw.grad)


def test_inplace_on_leaf_requiring_grad_raises():
    lx, _ = pair(arr(3))
    for f in (lambda: lx.add_(1), lambda: lx.mul_(2), lambda: lx.zero_(), lambda: lx.fill_(1.0),
              lambda: lx.copy_(loom.zeros(3, dtype=loom.float64)), lambda: lx.narrow(0, 0, 1).add_(1)):
        with pytest.raises(RuntimeError, match="leaf"):
            f()


def test_inplace_on_leaf_allowed_under_no_grad():
    a = arr(3)
    lx, _ = pair(a)
    with loom.no_grad():
        lx.add_(1)
        lx.narrow(0, 0, 1).mul_(0)
    expected = a + 1
    expected[0] = 0
    np.testing.assert_allclose(lx.detach().numpy(), expected)
    assert lx.requires_grad and lx.is_leaf


def test_copy_into_view_with_grad():
    a, b = arr(4, 3), arr(3)
    lx, tx = pair(a)
    ls, ts = pair(b)
    for x, s in ((lx, ls), (tx, ts)):
        y = x * 1
        y.select(0, 1).copy_(s * 2)
        (y * y).sum().backward()
    close(lx.grad, tx.grad)
    close(ls.grad, ts.grad)


def test_copy_into_non_leaf_with_broadcast():
    a, b = arr(4, 3), arr(3)
    lx, tx = pair(a)
    ls, ts = pair(b)
    for x, s in ((lx, ls), (tx, ts)):
        y = x * 1
        y.copy_(s)
        (y * y).sum().backward()
    # y was overwritten: torch gives zeros, loom may give zeros or no gradient at all
    assert lx.grad is None or not lx.grad.numpy().any()
    close(ls.grad, ts.grad)


def test_copy_into_zeros_buffer_gives_grad():
    b = arr(3)
    ls, ts = pair(b)
    lbuf = loom.zeros(2, 3, dtype=loom.float64)
    tbuf = torch.zeros(2, 3, dtype=torch.float64)
    lbuf.select(0, 0).copy_(ls)
    tbuf.select(0, 0).copy_(ts)
    assert lbuf.requires_grad
    (lbuf * lbuf).sum().backward()
    (tbuf * tbuf).sum().backward()
    close(ls.grad, ts.grad)


# ---- graph structure ----

def test_grad_fn_names_and_next_functions():
    lx, _ = pair(arr(3))
    y = lx * 2 + lx
    assert y.grad_fn is not None
    assert "add" in y.grad_fn.name().lower()
    nxt = y.grad_fn.next_functions
    assert isinstance(nxt, tuple) and len(nxt) == 2
    names = [n.name() if n is not None else None for n, _ in nxt]
    assert "AccumulateGrad" in names
    assert any(n is not None and "mul" in n.lower() for n in names)
    assert lx.grad_fn is None
    assert "Backward" in repr(y.grad_fn)


def test_diamond_graph_and_reused_tensor():
    a = arr(3)
    lx, tx = pair(a)
    for x in (lx, tx):
        h = x.exp()
        left = h * 2
        right = h.sin()
        y = left * right + h * h + x
        y.sum().backward()
    close(lx.grad, tx.grad)


def test_tensor_used_twice_in_one_op():
    lx, tx = pair(arr(3))
    (lx * lx * lx).sum().backward()
    (tx * tx * tx).sum().backward()
    close(lx.grad, tx.grad)


@pytest.mark.parametrize("sa,sb", [((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((1,), (5, 1)), ((), (2, 3)), ((2, 1, 3), (4, 1))])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow", "maximum", "atan2"])
def test_broadcast_binary_grads_reduce_to_input_shapes(sa, sb, op):
    a = np.abs(arr(*sa)) + 0.5
    b = np.abs(arr(*sb)) + 0.5
    la, ta = pair(a)
    lb, tb = pair(b)
    getattr(loom, op)(la, lb).sum().backward()
    getattr(torch, op)(ta, tb).sum().backward()
    assert tuple(la.grad.shape) == sa and tuple(lb.grad.shape) == sb
    close(la.grad, ta.grad)
    close(lb.grad, tb.grad)


def test_grad_dtype_matches_input_dtype_with_mixed_precision():
    lx = loom.tensor([1.0, 2.0], dtype=loom.float32, requires_grad=True)
    ly = loom.tensor([3.0, 4.0], dtype=loom.float64, requires_grad=True)
    (lx * ly).sum().backward()
    assert lx.grad.dtype == loom.float32 and ly.grad.dtype == loom.float64
    np.testing.assert_allclose(lx.grad.numpy(), [3.0, 4.0])


def test_grad_setter_and_zeroing():
    lx, _ = pair(arr(3))
    (lx * 2).sum().backward()
    lx.grad = None
    assert lx.grad is None
    (lx * 3).sum().backward()
    np.testing.assert_allclose(lx.grad.numpy(), 3.0)
    with pytest.raises((ValueError, RuntimeError)):
        lx.grad = loom.zeros(4, dtype=loom.float64)


def test_view_ops_grads():
    a = arr(2, 3, 4)
    lx, tx = pair(a)
    for x in (lx, tx):
        y = x.permute(2, 0, 1).reshape(4, 6).t().narrow(0, 1, 4).select(1, 2).unsqueeze(0).expand(3, 4)
        (y * y.detach().exp()).sum().backward()
    close(lx.grad, tx.grad)


def test_inplace_twice_on_same_view():
    a = arr(4, 3)
    lx, tx = pair(a)
    for x in (lx, tx):
        y = x * 1
        v = y.narrow(0, 1, 2)
        v.mul_(3)
        v.add_(1)
        v.mul_(v.detach() * 0 + 2)
        (y * y).sum().backward()
    close(lx.grad, tx.grad)


def test_inplace_saved_self_double_backward():
    lx, tx = pair(arr(3))
    gs = []
    for x, ag in ((lx, loom.autograd), (tx, torch.autograd)):
        y = x * 1
        y.mul_(x)  # d/dx = 2x
        (g,) = ag.grad(y.sum(), x, create_graph=True)
        (gg,) = ag.grad(g.sum(), x)
        gs.append((g, gg))
    close(gs[0][0], gs[1][0])
    close(gs[0][1], gs[1][1])


def test_output_of_no_grad_does_not_get_history_from_inplace():
    lx, _ = pair(arr(3))
    buf = loom.zeros(3, dtype=loom.float64)
    with loom.no_grad():
        buf.add_(lx)
    assert not buf.requires_grad


# ---- views taken before an in-place write see the write in their gradient (PyTorch regenerates grad_fn) ----

def _both(fn):
    a = arr(4, 3)
    lx, tx = pair(a)
    lr, tr = fn(lx, loom), fn(tx, torch)
    close(lx.grad, tx.grad)
    return lr, tr


def test_view_taken_before_inplace_on_base():
    def f(x, m):
        y = x * 1
        v = y.narrow(0, 0, 2)
        y.mul_(2)
        (v * v).sum().backward()
    _both(f)


def test_view_taken_before_inplace_on_sibling_view():
    def f(x, m):
        y = x * 1
        whole = y.view(12)
        y.select(0, 1).mul_(5)
        y.narrow(1, 0, 1).add_(y.narrow(1, 2, 1).detach())
        (whole * whole.detach().exp()).sum().backward()
    _both(f)


def test_buffer_view_gains_history_from_copy_into_sibling():
    for m in (loom, torch):
        s = m.tensor([1.0, 2.0, 3.0], dtype=m.float64, requires_grad=True)
        buf = m.zeros(2, 3, dtype=m.float64)
        flat = buf.view(6)
        buf.select(0, 0).copy_(s * 3)
        assert flat.requires_grad
        (flat * flat).sum().backward()
        np.testing.assert_allclose(s.grad.detach().numpy(), 18 * np.array([1.0, 2.0, 3.0]))


def test_view_of_leaf_after_no_grad_update():
    a = arr(3, 2)
    lx, tx = pair(a)
    for x, m in ((lx, loom), (tx, torch)):
        v = x.t()
        with m.no_grad():
            x.sub_(1.0)
        (v * v).sum().backward()
    close(lx.grad, tx.grad)


def test_detached_view_does_not_gain_history():
    lx, _ = pair(arr(3))
    y = lx * 1
    d = y.narrow(0, 0, 2).detach()
    y.mul_(2)
    assert not d.requires_grad and d.grad_fn is None
    np.testing.assert_allclose(d.numpy(), (lx.detach().numpy() * 2)[:2])


def test_retain_grad_follows_inplace_and_hook_sees_old_value():
    a = arr(3)
    lx, tx = pair(a)
    res = []
    for x in (lx, tx):
        y = x * 1
        y.retain_grad()
        seen = []
        y.register_hook(lambda g, seen=seen: seen.append(g.detach().numpy().copy()))
        y.mul_(3)
        (y * y).sum().backward()
        assert y.retains_grad
        res.append((y.grad.detach().numpy().copy(), seen[0]))
    np.testing.assert_allclose(res[0][0], res[1][0])  # grad w.r.t. the new value
    np.testing.assert_allclose(res[0][1], res[1][1])  # the hook registered before sees the old value's grad
    close(lx.grad, tx.grad)


def test_hook_changing_shape_or_dtype_raises():
    x = loom.ones(3, requires_grad=True)
    x.register_hook(lambda g: loom.ones(5))
    with pytest.raises(RuntimeError, match="size"):
        (x * 2).sum().backward()
    x = loom.ones(3, requires_grad=True)
    y = x * 2
    y.register_hook(lambda g: g.double())
    with pytest.raises(RuntimeError, match="dtype"):
        (y * 2).sum().backward()


def test_second_backward_through_ops_that_save_nothing():
    lx, tx = pair(arr(3))
    for x in (lx, tx):
        y = (x + 1).sum()
        y.backward()
        y.backward()
    close(lx.grad, tx.grad)


@pytest.mark.parametrize("batched", [False, True])
def test_product_gradient_comes_back_in_the_operand_layout(batched):
    # A weight used transposed (x @ w.t(), as Linear does) gets a contiguous gradient like PyTorch's, with the
    # same values; before, it was a transposed view that AccumulateGrad copied with a strided loop.
    rng = np.random.default_rng(3)
    shape_w, shape_x = ((2, 5, 3), (2, 4, 3)) if batched else ((5, 3), (4, 3))
    w_np, x_np = rng.standard_normal(shape_w).astype(np.float32), rng.standard_normal(shape_x).astype(np.float32)
    results = {}
    for lib in (loom, torch):
        w = lib.tensor(w_np, requires_grad=True)
        x = lib.tensor(x_np, requires_grad=True)
        wt = w.transpose(-2, -1)
        y = x @ wt
        (y * y).sum().backward()
        # x's gradient flows through the transposed operand too: x.grad = g @ w
        results[lib.__name__] = (w.grad, x.grad)
    (wg, xg), (wg_t, xg_t) = results["loom"], results["torch"]
    assert wg.is_contiguous() and xg.is_contiguous()
    np.testing.assert_allclose(wg.numpy(), wg_t.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(xg.numpy(), xg_t.numpy(), rtol=1e-5, atol=1e-5)


def test_product_gradient_of_a_transposed_left_operand():
    rng = np.random.default_rng(4)
    a_np, b_np = rng.standard_normal((3, 6)).astype(np.float32), rng.standard_normal((3, 2)).astype(np.float32)
    grads = []
    for lib in (loom, torch):
        a = lib.tensor(a_np, requires_grad=True)
        b = lib.tensor(b_np, requires_grad=True)
        (a.t() @ b).pow(2).sum().backward()
        grads.append((a.grad.numpy(), b.grad.numpy()))
        if lib is loom:
            assert a.grad.is_contiguous()
    for mine, ref in zip(*grads):
        np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=1e-5)


def test_leaf_grad_never_aliases_a_reachable_tensor():
    # AccumulateGrad takes an incoming gradient's buffer only when nothing else can reach it.
    x = loom.randn(3, 4, requires_grad=True)
    seed = loom.ones(12)
    x.reshape(12).backward(seed)  # the gradient flows to x as a view of the caller's seed
    seed.add_(1.0)
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((3, 4), np.float32))
    kept = []
    w = loom.randn(5, requires_grad=True)
    w.register_hook(lambda g: kept.append(g * 2) or kept[-1])
    (w * 3).sum().backward()
    kept[0].add_(100.0)
    np.testing.assert_allclose(w.grad.numpy(), np.full(5, 6.0, np.float32))
    # A fresh product's gradient is taken as is: later accumulation still adds.
    a = loom.randn(4, 3, requires_grad=True)
    b = loom.randn(3, 2)
    (a @ b).sum().backward()
    first = a.grad.numpy().copy()
    (a @ b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), 2 * first, rtol=1e-6)
