"""Recurrent layers with torch.nn's names, parameter layout and init: RNN (tanh/relu), LSTM (with proj_size), GRU
and their single-step cells.

Sequences are handled in the packed layout (steps one after another, batch_sizes[t] rows at step t), a padded input
being the case where every step has the whole batch, so packed and padded inputs take the same path. Per layer and
direction, the input projection of all steps is one GEMM, split into steps by _split_steps (whose backward is one cat);
then per step one GEMM of the hidden state accumulates into the gates (addmm), followed by the gate nonlinearities.
Gradients come from autograd through these ops.
"""
import math
import numbers
import warnings

from loom import _C
from loom.nn import functional as F
from loom.nn import init
from loom.nn.module import Module
from loom.nn.parameter import Parameter
from loom.nn.utils.rnn import PackedSequence

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _gemm(x, weight, bias=None, into=None):
    """x @ weight^T, plus `into` (a running sum) or else the bias, in one addmm where possible."""
    if into is not None:
        return _C.addmm(into, x, weight.t())
    if bias is not None:
        return _C.addmm(bias, x, weight.t())
    return _C.mm(x, weight.t())


# ---- one time step of each cell: gi (batch, gates) is the input's projection x W_ih^T (+ bias), already computed
# for all steps at once; states are (batch, hidden) ----

def _rnn_step(activation):
    def step(gi, state, w_hh, b_hh, w_hr):
        (h,) = state
        return (activation(_gemm(h, w_hh, into=gi)),)
    return step


def _lstm_step(gi, state, w_hh, b_hh, w_hr):
    h, c = state
    i, f, g, o = _gemm(h, w_hh, into=gi).chunk(4, 1)
    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
    h = o.sigmoid() * c.tanh()
    if w_hr is not None:
        h = _C.mm(h, w_hr.t())
    return h, c


def _gru_step(gi, state, w_hh, b_hh, w_hr):
    (h,) = state
    gh = _gemm(h, w_hh, b_hh)
    hidden = h.shape[1]
    r, z = (gi[:, :2 * hidden] + gh[:, :2 * hidden]).sigmoid().chunk(2, 1)
    n = (gi[:, 2 * hidden:] + r * gh[:, 2 * hidden:]).tanh()
    return (n + z * (h - n),)


_STEPS = {"RNN_TANH": _rnn_step(_C.tanh), "RNN_RELU": _rnn_step(_C.relu), "LSTM": _lstm_step, "GRU": _gru_step}


def _run_direction(step, gates_in, batch_sizes, state, weights, reverse):
    """Runs one layer in one direction over the steps' input projections `gates_in` (each (batch_sizes[t], gates)),
    starting from `state` (tuple of (batch, hidden) tensors). Returns the per-step outputs in time order and the final
    state of every sequence (its state after its own last step)."""
    steps = len(gates_in)
    outputs = [None] * steps
    if not reverse:
        finished = []  # states of sequences that ended, last rows first
        for t in range(steps):
            bs = batch_sizes[t]
            if bs < state[0].shape[0]:
                finished.append(tuple(s[bs:] for s in state))
                state = tuple(s[:bs] for s in state)
            state = step(gates_in[t], state, *weights)
            outputs[t] = state[0]
        finished.append(state)
        final = tuple(_C.cat([part[k] for part in reversed(finished)], 0) if len(finished) > 1 else finished[0][k]
                      for k in range(len(state)))
        return outputs, final
    initial = state
    running = tuple(s[:batch_sizes[-1]] for s in initial) if steps else initial
    for t in reversed(range(steps)):
        bs = batch_sizes[t]
        rows = running[0].shape[0]
        if bs > rows:  # sequences that start their (reversed) run at this step join with their initial state
            running = tuple(_C.cat([r, s[rows:bs]], 0) for r, s in zip(running, initial))
        running = step(gates_in[t], running, *weights)
        outputs[t] = running[0]
    return outputs, running


class RNNBase(Module):
    """The parameters and the layer/direction loop shared by RNN, LSTM and GRU (torch.nn.RNNBase)."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        if mode not in _GATES:
            raise ValueError(f"Unrecognized RNN mode: {mode}")
        if not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an element "
                             "being zeroed")
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"hidden_size must be an integer greater than zero, got {hidden_size!r}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"num_layers must be an integer greater than zero, got {num_layers!r}")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects "
                          f"num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                          stacklevel=2)
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        num_directions = 2 if bidirectional else 1
        gate_size = _GATES[mode] * hidden_size
        real_hidden = proj_size if proj_size > 0 else hidden_size
        kw = {"dtype": dtype, "device": device}
        self._flat_weights_names = []
        self._all_weights = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else real_hidden * num_directions
            for direction in range(num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = [("weight_ih", (gate_size, layer_input)), ("weight_hh", (gate_size, real_hidden))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size > 0:
                    shapes.append(("weight_hr", (proj_size, hidden_size)))
                names = []
                for base, shape in shapes:
                    setattr(self, base + suffix, Parameter(_C.empty(*shape, **kw)))
                    names.append(base + suffix)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def flatten_parameters(self):
        """A no-op: loom's weights are always usable as they are (torch compacts them for cuDNN)."""

    @property
    def _flat_weights(self):
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self):
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def _layer_weights(self, layer, direction):
        """(w_ih, w_hh, bias added to the input GEMM, b_hh kept apart (GRU only), w_hr) of one layer/direction."""
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        w_ih = getattr(self, "weight_ih" + suffix)
        w_hh = getattr(self, "weight_hh" + suffix)
        w_hr = getattr(self, "weight_hr" + suffix) if self.proj_size > 0 else None
        if not self.bias:
            return w_ih, w_hh, None, None, w_hr
        b_ih, b_hh = getattr(self, "bias_ih" + suffix), getattr(self, "bias_hh" + suffix)
        if self.mode == "GRU":  # b_hn sits inside r * (W_hn h + b_hn): the biases cannot be summed
            return w_ih, w_hh, b_ih, b_hh, w_hr
        return w_ih, w_hh, b_ih + b_hh, None, w_hr

    def _check_hidden(self, hx, expected, name):
        if tuple(hx.shape) != expected:
            raise RuntimeError(f"Expected {name} size {expected}, got {tuple(hx.shape)}")

    def forward(self, input, hx=None):
        name = type(self).__name__
        num_directions = 2 if self.bidirectional else 1
        real_hidden = self.proj_size if self.proj_size > 0 else self.hidden_size
        packed = isinstance(input, PackedSequence)
        if packed:
            data, batch_sizes = input.data, input.batch_sizes.tolist()
            batch = batch_sizes[0] if batch_sizes else 0
            if data.dim() != 2:
                raise ValueError(f"{name}: packed input data must be 2-D, got {data.dim()}-D")
            features = data.shape[-1]
            batched = True
        else:
            if input.dim() not in (2, 3):
                raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}D instead")
            batched = input.dim() == 3
            if not batched:
                input = input.unsqueeze(0 if self.batch_first else 1)
            if self.batch_first:
                input = input.transpose(0, 1)
            batch = input.shape[1]
            batch_sizes = [batch] * input.shape[0]
            features = input.shape[2]
            data = input.reshape(-1, features)  # the packed layout: steps one after another
        if features != self.input_size:
            raise RuntimeError(f"{name}: input.size(-1) must be equal to input_size. Expected {self.input_size}, got "
                               f"{features}")
        h_shape = (self.num_layers * num_directions, batch, real_hidden)
        c_shape = (self.num_layers * num_directions, batch, self.hidden_size)
        lstm = self.mode == "LSTM"
        if hx is None:
            dtype, device = self.weight_ih_l0.dtype, self.weight_ih_l0.device
            hx = [_C.zeros(*h_shape, dtype=dtype, device=device)]
            if lstm:
                hx.append(_C.zeros(*c_shape, dtype=dtype, device=device))
        else:
            hx = list(hx) if lstm else [hx]
            if lstm and len(hx) != 2:
                raise RuntimeError(f"{name}: hx must be a tuple (h_0, c_0)")
            if not batched:
                for k, h in enumerate(hx):
                    if h.dim() != 2:
                        raise RuntimeError(f"For unbatched 2-D input, hx should also be 2-D but got {h.dim()}-D tensor")
                    hx[k] = h.unsqueeze(1)
            elif any(h.dim() != 3 for h in hx):
                raise RuntimeError(f"For batched 3-D input, hx should also be 3-D but got "
                                   f"{[h.dim() for h in hx]}-D tensor")
            if packed and input.sorted_indices is not None:
                hx = [h.index_select(1, input.sorted_indices) for h in hx]
            self._check_hidden(hx[0], h_shape, "hidden")
            if lstm:
                self._check_hidden(hx[1], c_shape, "cell")
        step = _STEPS[self.mode]
        finals = [[] for _ in hx]
        for layer in range(self.num_layers):
            per_direction = []
            for direction in range(num_directions):
                index = layer * num_directions + direction
                w_ih, w_hh, bias, b_hh, w_hr = self._layer_weights(layer, direction)
                # The input projection of every step in one GEMM, then one piece per step.
                gates_in = _C._split_steps(_gemm(data, w_ih, bias), batch_sizes)
                outputs, final = _run_direction(step, gates_in, batch_sizes, tuple(h[index] for h in hx),
                                                (w_hh, b_hh, w_hr), reverse=direction == 1)
                per_direction.append(_C.cat(outputs, 0) if outputs else data.new_zeros((0, real_hidden)))
                for k, f in enumerate(final):
                    finals[k].append(f)
            data = per_direction[0] if num_directions == 1 else _C.cat(per_direction, 1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                data = F.dropout(data, self.dropout, True)
        hidden = [_C.stack(f, 0) for f in finals]
        if packed:
            output = PackedSequence(data, input.batch_sizes, input.sorted_indices, input.unsorted_indices)
            if input.unsorted_indices is not None:
                hidden = [h.index_select(1, input.unsorted_indices) for h in hidden]
        else:
            output = data.reshape(len(batch_sizes), batch, num_directions * real_hidden)
            if self.batch_first:
                output = output.transpose(0, 1)
            if not batched:
                output = output.squeeze(0 if self.batch_first else 1)
                hidden = [h.squeeze(1) for h in hidden]
        return output, (tuple(hidden) if lstm else hidden[0])

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


class RNN(RNNBase):
    """Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (nonlinearity='relu' for ReLU).
    Arguments as torch.nn.RNN: RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False)."""

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            self.nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            self.nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if self.nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif self.nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{self.nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(mode, *args, **kwargs)


class LSTM(RNNBase):
    """LSTM with gates (i, f, g, o) packed in that order in weight_ih/weight_hh, optional proj_size (weight_hr);
    forward(input, (h_0, c_0)=None) -> (output, (h_n, c_n)), as torch.nn.LSTM."""

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)


class GRU(RNNBase):
    """GRU with gates (r, z, n) packed in that order; n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),
    h' = (1 - z) * n + z * h, as torch.nn.GRU."""

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)


def _cell(step, input, state, weights):
    w_ih, w_hh, bias, b_hh, w_hr = weights
    return step(_gemm(input, w_ih, bias), state, w_hh, b_hh, w_hr)


class RNNCellBase(Module):
    """Parameters weight_ih (gates*hidden, input), weight_hh (gates*hidden, hidden), bias_ih, bias_hh."""

    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        kw = {"dtype": dtype, "device": device}
        self.weight_ih = Parameter(_C.empty(num_chunks * hidden_size, input_size, **kw))
        self.weight_hh = Parameter(_C.empty(num_chunks * hidden_size, hidden_size, **kw))
        if bias:
            self.bias_ih = Parameter(_C.empty(num_chunks * hidden_size, **kw))
            self.bias_hh = Parameter(_C.empty(num_chunks * hidden_size, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _prepare(self, input, hx, states):
        """Checks the input (1-D unbatched or 2-D), makes the missing states zeros; returns (input, states, batched)."""
        name = type(self).__name__
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"{name}: input has inconsistent input_size: got {input.shape[-1]} expected "
                               f"{self.input_size}")
        batched = input.dim() == 2
        if not batched:
            input = input.unsqueeze(0)
        if hx is None:
            zeros = _C.zeros(input.shape[0], self.hidden_size, dtype=input.dtype, device=input.device)
            return input, (zeros,) * states, batched
        hx = tuple(hx) if states > 1 else (hx,)
        if not batched:
            hx = tuple(h.unsqueeze(0) for h in hx)
        for h in hx:
            if tuple(h.shape) != (input.shape[0], self.hidden_size):
                raise RuntimeError(f"{name}: hidden state of shape {tuple(h.shape)} does not match "
                                   f"({input.shape[0]}, {self.hidden_size})")
        return input, hx, batched

    def _weights(self, summed_bias):
        if self.bias_ih is None:
            return self.weight_ih, self.weight_hh, None, None, None
        if summed_bias:
            return self.weight_ih, self.weight_hh, self.bias_ih + self.bias_hh, None, None
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, None


class RNNCell(RNNCellBase):
    """One Elman RNN step: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu)."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)

    def forward(self, input, hx=None):
        input, state, batched = self._prepare(input, hx, 1)
        step = _STEPS["RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"]
        (h,) = _cell(step, input, state, self._weights(True))
        return h if batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step: forward(input, (h, c)=None) -> (h', c')."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input, hx=None):
        input, state, batched = self._prepare(input, hx, 2)
        h, c = _cell(_lstm_step, input, state, self._weights(True))
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    """One GRU step: forward(input, h=None) -> h'."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input, hx=None):
        input, state, batched = self._prepare(input, hx, 1)
        (h,) = _cell(_gru_step, input, state, self._weights(False))
        return h if batched else h.squeeze(0)
