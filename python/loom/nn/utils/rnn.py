"""Packed variable-length sequences (as torch.nn.utils.rnn): PackedSequence, pack/pad helpers.

A PackedSequence holds the time steps of a batch of sequences sorted by decreasing length, step after step:
data (sum(lengths), *) and batch_sizes[t] = how many sequences are still running at step t (a CPU int64 tensor).
sorted_indices maps sorted position -> original batch index; unsorted_indices is its inverse.
"""
from collections import namedtuple

from loom import _C

__all__ = ["PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence", "pack_sequence",
           "unpack_sequence", "unpad_sequence", "invert_permutation"]


def invert_permutation(permutation):
    if permutation is None:
        return None
    inverse = _C.empty_like(permutation)
    inverse.scatter_(0, permutation, _C.arange(permutation.numel(), device=permutation.device))
    return inverse


class PackedSequence(namedtuple("PackedSequence", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])):
    """(data, batch_sizes, sorted_indices, unsorted_indices); build it with pack_padded_sequence / pack_sequence."""

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs):
        """Moves/casts data (and the indices to data's device); batch_sizes stays on the CPU, as in torch."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        index = [None if i is None else i.to(data.device) for i in (self.sorted_indices, self.unsorted_indices)]
        return type(self)(data, self.batch_sizes, index[0], index[1])

    def cpu(self):
        return self.to("cpu")

    def double(self):
        return self.to(_C.float64)

    def float(self):
        return self.to(_C.float32)

    @property
    def is_cuda(self):
        return self.data.is_cuda

    def is_pinned(self):
        return False


def _lengths_list(lengths, name):
    if hasattr(lengths, "tolist"):
        if lengths.dim() != 1:
            raise ValueError(f"{name}: lengths must be a 1-D tensor or a list, got shape {tuple(lengths.shape)}")
        lengths = lengths.tolist()
    return [int(n) for n in lengths]


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Packs a padded batch (T, B, *) (or (B, T, *) with batch_first) of sequences with the given lengths."""
    lengths = _lengths_list(lengths, "pack_padded_sequence")
    if batch_first:
        input = input.transpose(0, 1)
    if input.dim() < 2 or len(lengths) != input.shape[1]:
        raise ValueError(f"pack_padded_sequence: expected {len(lengths)} sequences in the batch dimension of an input "
                         f"of shape {tuple(input.shape)} (batch_first={batch_first})")
    if enforce_sorted:
        if any(a < b for a, b in zip(lengths, lengths[1:])):
            raise RuntimeError("pack_padded_sequence: `lengths` array must be sorted in decreasing order when "
                               "`enforce_sorted` is True. You can pass `enforce_sorted=False` to pack_padded_sequence "
                               "and/or pack_sequence to sidestep this requirement if you do not need ONNX "
                               "exportability.")
        sorted_indices = None
    else:
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])  # stable, like torch.sort(descending)
        sorted_indices = _C.tensor(order, dtype=_C.int64, device=input.device)
        input = input.index_select(1, sorted_indices)
        lengths = [lengths[i] for i in order]
    if lengths and lengths[-1] <= 0:
        raise RuntimeError("pack_padded_sequence: length of all samples has to be greater than 0, but found an "
                           "element in 'lengths' that is <= 0")
    if lengths and lengths[0] > input.shape[0]:
        raise ValueError(f"pack_padded_sequence: a length ({lengths[0]}) exceeds the padded length "
                         f"({input.shape[0]})")
    steps = lengths[0] if lengths else 0
    batch_sizes = [sum(1 for n in lengths if n > t) for t in range(steps)]
    data = _C.cat([input[t, :bs] for t, bs in enumerate(batch_sizes)], 0)
    return PackedSequence(data, _C.tensor(batch_sizes, dtype=_C.int64), sorted_indices, None)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Inverse of pack_padded_sequence: (padded (T, B, *) or (B, T, *), lengths as a CPU int64 tensor)."""
    data, batch_sizes = sequence.data, sequence.batch_sizes.tolist()
    batch = batch_sizes[0] if batch_sizes else 0
    steps = len(batch_sizes)
    if total_length is not None:
        if total_length < steps:
            raise ValueError(f"Expected total_length to be at least the length of the longest sequence in input, but "
                             f"got total_length={total_length} and max sequence length being {steps}")
    rows, offset = [], 0
    for bs in batch_sizes:
        row = data[offset:offset + bs]
        offset += bs
        if bs < batch:
            row = _C.cat([row, data.new_full((batch - bs, *data.shape[1:]), padding_value)], 0)
        rows.append(row)
    for _ in range(steps, total_length or steps):
        rows.append(data.new_full((batch, *data.shape[1:]), padding_value))
    padded = _C.stack(rows, 0) if rows else data.new_zeros((0, 0, *data.shape[1:]))
    lengths = [sum(1 for bs in batch_sizes if bs > b) for b in range(batch)]
    lengths = _C.tensor(lengths, dtype=_C.int64)
    if sequence.unsorted_indices is not None:
        padded = padded.index_select(1, sequence.unsorted_indices)
        lengths = lengths.index_select(0, sequence.unsorted_indices.cpu())
    if batch_first:
        padded = padded.transpose(0, 1)
    return padded, lengths


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stacks tensors of shape (L_i, *) into (max L, B, *) (or (B, max L, *)), padding with padding_value."""
    if padding_side not in ("left", "right"):
        raise ValueError(f"pad_sequence: padding_side must be 'left' or 'right', got {padding_side!r}")
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("pad_sequence: received an empty list of sequences")
    longest = max(s.shape[0] for s in sequences)
    padded = []
    for s in sequences:
        missing = longest - s.shape[0]
        if missing:
            fill = s.new_full((missing, *s.shape[1:]), padding_value)
            s = _C.cat([s, fill] if padding_side == "right" else [fill, s], 0)
        padded.append(s)
    return _C.stack(padded, 0 if batch_first else 1)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    return [padded_sequences[b, :n] for b, n in enumerate(_lengths_list(lengths, "unpad_sequence"))]


def pack_sequence(sequences, enforce_sorted=True):
    """Packs a list of tensors (L_i, *) of decreasing length (any order with enforce_sorted=False)."""
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences):
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
