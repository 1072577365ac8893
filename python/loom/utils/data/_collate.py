"""default_collate: turns a list of samples into a batch, with torch.utils.data.default_collate's rules."""
import collections.abc
import numbers

import loom

try:
    import numpy as _np
except ImportError:  # pragma: no cover
    _np = None


def _elem_error(elem):
    return TypeError("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                     f"found {type(elem).__name__}")


def default_collate(batch):
    """Stacks tensors (and numpy arrays) along a new first dim, turns numbers into tensors (float -> float64,
    int -> int64, bool -> bool), keeps strings as lists, and recurses into dicts, namedtuples, tuples and lists
    (tuples and lists become lists, as in torch)."""
    if len(batch) == 0:
        raise ValueError("default_collate: got an empty batch")
    elem = batch[0]
    if isinstance(elem, loom.Tensor):
        for i, b in enumerate(batch):
            if not isinstance(b, loom.Tensor):
                raise TypeError(f"default_collate: sample {i} is {type(b).__name__}, sample 0 is a tensor")
            if tuple(b.shape) != tuple(elem.shape):
                raise RuntimeError(f"default_collate: stack expects each tensor to be equal size, but got "
                                   f"{tuple(elem.shape)} at entry 0 and {tuple(b.shape)} at entry {i}")
        return loom.stack(list(batch), 0)
    if _np is not None and isinstance(elem, _np.ndarray):
        if elem.dtype.kind in "USOV":
            raise _elem_error(elem)
        return loom.from_numpy(_np.ascontiguousarray(_np.stack(batch)))
    if _np is not None and isinstance(elem, _np.generic):
        if elem.dtype.kind in "USOV":
            raise _elem_error(elem)
        return loom.from_numpy(_np.ascontiguousarray(_np.array(batch)))
    if isinstance(elem, bool):
        return loom.tensor(list(batch), dtype=loom.bool)
    if isinstance(elem, float):
        return loom.tensor(list(batch), dtype=loom.float64)
    if isinstance(elem, int):
        return loom.tensor(list(batch), dtype=loom.int64)
    if isinstance(elem, numbers.Number):
        return loom.tensor([complex(b) if isinstance(b, complex) else float(b) for b in batch])
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        collated = {key: default_collate([d[key] for d in batch]) for key in elem}
        try:
            return type(elem)(collated) if not isinstance(elem, dict) or type(elem) is not dict else collated
        except TypeError:
            return collated
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(samples)) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if not all(len(b) == size for b in batch):
            raise RuntimeError("default_collate: each element in list of batch should be of equal size")
        transposed = list(zip(*batch))
        return [default_collate(list(samples)) for samples in transposed]
    raise _elem_error(elem)
