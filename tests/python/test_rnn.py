"""nn.RNN / LSTM / GRU, their cells and nn.utils.rnn against torch.nn with the same weights: outputs, final states and
gradients w.r.t. inputs, initial states and every parameter."""
import numpy as np
import pytest
import torch

import loom
import loom.nn as nn
from loom.nn.utils import rnn as rnn_utils
from tolerances import GRAD, MODULE

MODES = ["RNN_TANH", "RNN_RELU", "LSTM", "GRU"]
DTYPES = {loom.float32: torch.float32, loom.float64: torch.float64}


def _make(mode, *args, **kwargs):
    """A torch layer and a loom layer of the same kind with the torch layer's weights copied over."""
    torch_dtype = kwargs.pop("torch_dtype")
    loom_dtype = {torch.float32: loom.float32, torch.float64: loom.float64}[torch_dtype]
    if mode.startswith("RNN_"):
        kwargs["nonlinearity"] = mode[4:].lower()
        mode = "RNN"
    torch_layer = getattr(torch.nn, mode)(*args, **kwargs).to(torch_dtype)
    loom_layer = getattr(nn, mode)(*args, **kwargs, dtype=loom_dtype)
    names = [n for n, _ in torch_layer.named_parameters()]
    assert names == [n for n, _ in loom_layer.named_parameters()]
    with torch.no_grad():
        for (_, pt), (_, pl) in zip(torch_layer.named_parameters(), loom_layer.named_parameters()):
            assert tuple(pt.shape) == tuple(pl.shape)
            pl.data = loom.from_numpy(pt.detach().numpy().copy())
            pl.requires_grad_(True)
    return torch_layer, loom_layer


def _pair(shape, torch_dtype, seed, requires_grad=True):
    arr = np.random.default_rng(seed).standard_normal(shape)
    t = torch.tensor(arr, dtype=torch_dtype, requires_grad=requires_grad)
    lt = loom.from_numpy(t.detach().numpy().copy())
    lt.requires_grad_(requires_grad)
    return t, lt


def _close(loom_tensor, torch_tensor, tol, what):
    rtol, atol = tol
    np.testing.assert_allclose(loom_tensor.detach().numpy(), torch_tensor.detach().numpy(), rtol=rtol, atol=atol,
                               err_msg=what)


def _states(out):
    return list(out) if isinstance(out, tuple) else [out]


def _compare(torch_layer, loom_layer, torch_in, loom_in, torch_hx, loom_hx, dtype, leaves):
    """Runs both layers, compares outputs and final states, backpropagates one random weighting of everything and
    compares the gradients of the given (torch, loom) leaves and of every parameter."""
    tol, grad_tol = MODULE[dtype], GRAD[dtype]
    out_t, hn_t = torch_layer(torch_in, torch_hx)
    out_l, hn_l = loom_layer(loom_in, loom_hx)
    packed = isinstance(out_t, torch.nn.utils.rnn.PackedSequence)
    if packed:
        assert out_l.batch_sizes.tolist() == out_t.batch_sizes.tolist()
        out_t, out_l = out_t.data, out_l.data
    _close(out_l, out_t, tol, "output")
    for k, (a, b) in enumerate(zip(_states(hn_l), _states(hn_t))):
        _close(a, b, tol, f"final state {k}")
    loss_t = 0
    loss_l = 0
    for k, (a, b) in enumerate(zip([out_l, *_states(hn_l)], [out_t, *_states(hn_t)])):
        wt, wl = _pair(tuple(b.shape), b.dtype, 100 + k, requires_grad=False)
        loss_t = loss_t + (b * wt).sum()
        loss_l = loss_l + (a * wl).sum()
    loss_t.backward()
    loss_l.backward()
    for name, (pt, pl) in zip([n for n, _ in torch_layer.named_parameters()],
                              zip(torch_layer.parameters(), loom_layer.parameters())):
        _close(pl.grad, pt.grad, grad_tol, f"grad of {name}")
    for k, (t, lt) in enumerate(leaves):
        assert lt.grad is not None, f"leaf {k} got no gradient"
        _close(lt.grad, t.grad, grad_tol, f"grad of input/state {k}")


def _hx(mode, shape_h, shape_c, torch_dtype):
    h_t, h_l = _pair(shape_h, torch_dtype, 7)
    if mode != "LSTM":
        return h_t, h_l, [(h_t, h_l)]
    c_t, c_l = _pair(shape_c, torch_dtype, 8)
    return (h_t, c_t), (h_l, c_l), [(h_t, h_l), (c_t, c_l)]


@pytest.mark.parametrize("dtype", [loom.float64, loom.float32])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, False), (1, True), (2, True)])
def test_layers_match_torch(mode, num_layers, bidirectional, dtype):
    torch_dtype = DTYPES[dtype]
    torch_layer, loom_layer = _make(mode, 5, 6, num_layers=num_layers, bidirectional=bidirectional,
                                    torch_dtype=torch_dtype)
    x_t, x_l = _pair((7, 3, 5), torch_dtype, 1)
    directions = 2 if bidirectional else 1
    hx_t, hx_l, states = _hx(mode, (num_layers * directions, 3, 6), (num_layers * directions, 3, 6), torch_dtype)
    _compare(torch_layer, loom_layer, x_t, x_l, hx_t, hx_l, dtype, [(x_t, x_l), *states])


@pytest.mark.parametrize("mode", MODES)
def test_batch_first_no_bias_zero_initial_state(mode):
    torch_layer, loom_layer = _make(mode, 4, 5, num_layers=2, bias=False, batch_first=True, bidirectional=True,
                                    torch_dtype=torch.float64)
    assert not any("bias" in n for n, _ in loom_layer.named_parameters())
    x_t, x_l = _pair((3, 6, 4), torch.float64, 2)
    _compare(torch_layer, loom_layer, x_t, x_l, None, None, loom.float64, [(x_t, x_l)])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("batch_first", [False, True])
def test_unbatched_input(mode, batch_first):
    torch_layer, loom_layer = _make(mode, 4, 5, num_layers=2, batch_first=batch_first, bidirectional=True,
                                    torch_dtype=torch.float64)
    x_t, x_l = _pair((6, 4), torch.float64, 3)
    hx_t, hx_l, states = _hx(mode, (4, 5), (4, 5), torch.float64)
    _compare(torch_layer, loom_layer, x_t, x_l, hx_t, hx_l, loom.float64, [(x_t, x_l), *states])


@pytest.mark.parametrize("dtype", [loom.float64, loom.float32])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_sequences(mode, enforce_sorted, bidirectional, dtype):
    torch_dtype = DTYPES[dtype]
    lengths = [6, 4, 4, 1] if enforce_sorted else [2, 6, 1, 4]
    torch_layer, loom_layer = _make(mode, 3, 5, num_layers=2, bidirectional=bidirectional, batch_first=True,
                                    torch_dtype=torch_dtype)
    x_t, x_l = _pair((4, 6, 3), torch_dtype, 4)
    packed_t = torch.nn.utils.rnn.pack_padded_sequence(x_t, lengths, batch_first=True, enforce_sorted=enforce_sorted)
    packed_l = rnn_utils.pack_padded_sequence(x_l, lengths, batch_first=True, enforce_sorted=enforce_sorted)
    assert packed_l.batch_sizes.tolist() == packed_t.batch_sizes.tolist()
    if not enforce_sorted:
        assert packed_l.sorted_indices.tolist() == packed_t.sorted_indices.tolist()
        assert packed_l.unsorted_indices.tolist() == packed_t.unsorted_indices.tolist()
    directions = 2 if bidirectional else 1
    hx_t, hx_l, states = _hx(mode, (2 * directions, 4, 5), (2 * directions, 4, 5), torch_dtype)
    _compare(torch_layer, loom_layer, packed_t, packed_l, hx_t, hx_l, dtype, [(x_t, x_l), *states])


def test_pad_packed_round_trip_matches_torch():
    lengths = [3, 5, 2]
    x_t, x_l = _pair((5, 3, 2), torch.float64, 5)
    packed_t = torch.nn.utils.rnn.pack_padded_sequence(x_t, lengths, enforce_sorted=False)
    packed_l = rnn_utils.pack_padded_sequence(x_l, lengths, enforce_sorted=False)
    _close(packed_l.data, packed_t.data, (0, 0), "packed data")
    for batch_first in (False, True):
        pad_t, len_t = torch.nn.utils.rnn.pad_packed_sequence(packed_t, batch_first=batch_first, padding_value=-1.0,
                                                              total_length=7)
        pad_l, len_l = rnn_utils.pad_packed_sequence(packed_l, batch_first=batch_first, padding_value=-1.0,
                                                     total_length=7)
        _close(pad_l, pad_t, (0, 0), "padded")
        assert len_l.tolist() == len_t.tolist() and len_l.dtype == loom.int64
    seqs = [np.arange(n * 2, dtype=np.float64).reshape(n, 2) for n in (2, 4, 1)]
    for side in ("right", "left"):
        ref = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(s) for s in seqs], batch_first=True, padding_value=9.0,
                                              padding_side=side)
        got = rnn_utils.pad_sequence([loom.from_numpy(s) for s in seqs], batch_first=True, padding_value=9.0,
                                     padding_side=side)
        _close(got, ref, (0, 0), f"pad_sequence {side}")
    packed = rnn_utils.pack_sequence([loom.from_numpy(s) for s in seqs], enforce_sorted=False)
    for got, want in zip(rnn_utils.unpack_sequence(packed), seqs):
        np.testing.assert_array_equal(got.numpy(), want)
    with pytest.raises(RuntimeError, match="sorted in decreasing order"):
        rnn_utils.pack_padded_sequence(x_l, lengths)
    assert nn.utils.rnn.PackedSequence is rnn_utils.PackedSequence


@pytest.mark.parametrize("cell", ["RNNCell", "LSTMCell", "GRUCell"])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_cells_match_torch(cell, batched, bias):
    torch_cell = getattr(torch.nn, cell)(4, 6, bias=bias).double()
    loom_cell = getattr(nn, cell)(4, 6, bias=bias, dtype=loom.float64)
    assert [n for n, _ in torch_cell.named_parameters()] == [n for n, _ in loom_cell.named_parameters()]
    for pt, pl in zip(torch_cell.parameters(), loom_cell.parameters()):
        pl.data = loom.from_numpy(pt.detach().numpy().copy())
        pl.requires_grad_(True)
    shape = (3, 4) if batched else (4,)
    x_t, x_l = _pair(shape, torch.float64, 6)
    hx_t, hx_l, states = _hx("LSTM" if cell == "LSTMCell" else "RNN", shape[:-1] + (6,), shape[:-1] + (6,),
                             torch.float64)
    out_t, out_l = torch_cell(x_t, hx_t), loom_cell(x_l, hx_l)
    outs_t, outs_l = _states(out_t), _states(out_l)
    loss_t = sum((o * (k + 1.5)).sum() for k, o in enumerate(outs_t))
    loss_l = sum((o * (k + 1.5)).sum() for k, o in enumerate(outs_l))
    loss_t.backward()
    loss_l.backward()
    for a, b in zip(outs_l, outs_t):
        _close(a, b, MODULE[loom.float64], "cell output")
    for pt, pl in zip(torch_cell.parameters(), loom_cell.parameters()):
        _close(pl.grad, pt.grad, GRAD[loom.float64], "cell parameter grad")
    for t, lt in [(x_t, x_l), *states]:
        _close(lt.grad, t.grad, GRAD[loom.float64], "cell input grad")
    default = loom_cell(x_l)  # missing state = zeros
    ref = torch_cell(x_t)
    for a, b in zip(_states(default), _states(ref)):
        _close(a, b, MODULE[loom.float64], "cell with zero state")


def test_lstm_proj_size():
    torch_layer, loom_layer = _make("LSTM", 4, 6, num_layers=2, proj_size=3, bidirectional=True,
                                    torch_dtype=torch.float64)
    assert tuple(loom_layer.weight_hr_l0_reverse.shape) == (3, 6)
    x_t, x_l = _pair((5, 2, 4), torch.float64, 9)
    hx_t, hx_l, states = _hx("LSTM", (4, 2, 3), (4, 2, 6), torch.float64)
    _compare(torch_layer, loom_layer, x_t, x_l, hx_t, hx_l, loom.float64, [(x_t, x_l), *states])


def test_init_names_repr_and_module_paths():
    from loom.nn.modules.rnn import GRU, LSTM, RNNBase
    layer = LSTM(10, 20, num_layers=2, bidirectional=True, batch_first=True, dropout=0.25)
    ref = torch.nn.LSTM(10, 20, num_layers=2, bidirectional=True, batch_first=True, dropout=0.25)
    assert repr(layer) == repr(ref)
    assert [n for n, _ in layer.named_parameters()] == [n for n, _ in ref.named_parameters()]
    assert [[p.shape for p in ws] for ws in layer.all_weights] == [[tuple(p.shape) for p in ws] for ws in ref.all_weights]
    bound = 1 / np.sqrt(20)
    values = np.concatenate([p.detach().numpy().ravel() for p in layer.parameters()])
    assert values.min() >= -bound and values.max() <= bound and values.std() > bound / 3  # U(-1/sqrt(H), 1/sqrt(H))
    assert isinstance(layer, RNNBase) and layer.flatten_parameters() is None
    assert repr(GRU(3, 4, bias=False)) == repr(torch.nn.GRU(3, 4, bias=False))
    assert repr(nn.RNN(3, 4, nonlinearity="relu")) == repr(torch.nn.RNN(3, 4, nonlinearity="relu"))


def test_dropout_between_layers_train_and_eval():
    layer = nn.LSTM(8, 16, num_layers=3, dropout=0.5)
    x = loom.randn(5, 4, 8)
    layer.eval()
    with loom.no_grad():
        first, _ = layer(x)
        again, _ = layer(x)
    np.testing.assert_array_equal(first.numpy(), again.numpy())  # eval: deterministic
    layer.train()
    out, (h, c) = layer(x)
    assert tuple(out.shape) == (5, 4, 16) and tuple(h.shape) == (3, 4, 16) and tuple(c.shape) == (3, 4, 16)
    assert not np.allclose(out.detach().numpy(), first.numpy())  # train: dropout changed the upper layers' inputs
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        nn.GRU(3, 4, dropout=0.3)


def test_errors():
    layer = nn.LSTM(4, 5)
    with pytest.raises(RuntimeError, match="input_size"):
        layer(loom.randn(3, 2, 6))
    with pytest.raises(ValueError, match="2D or 3D"):
        layer(loom.randn(3, 2, 4, 1))
    with pytest.raises(RuntimeError, match="Expected hidden size"):
        layer(loom.randn(3, 2, 4), (loom.zeros(1, 3, 5), loom.zeros(1, 2, 5)))
    with pytest.raises(ValueError, match="proj_size"):
        nn.GRU(4, 5, proj_size=2)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(4, 5, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="1D or 2D"):
        nn.GRUCell(4, 5)(loom.randn(2, 3, 4))
