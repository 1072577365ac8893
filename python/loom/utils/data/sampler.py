"""Samplers: the order in which a DataLoader visits a dataset's indices (as in torch.utils.data)."""
import loom

_CHUNK = 4096  # indices drawn at a time by samplers with replacement


class Sampler:
    """Base class: an iterable of dataset indices (or of index lists for a batch sampler)."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random permutation of the indices each epoch (or num_samples draws with replacement).

    Each epoch draws one 63-bit seed from `generator` (default: loom's default generator) and permutes with a
    private generator seeded by it, so a saved epoch seed replays that epoch's order exactly (DataLoader resume).
    The permutation differs from torch's for the same seed: the RNGs differ.
    """

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        self.epoch_seed = None  # the seed of the epoch being iterated
        self._resume_seed = None
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement should be a bool, got {replacement!r}")
        if num_samples is not None and (not isinstance(num_samples, int) or num_samples <= 0):
            raise ValueError(f"RandomSampler: num_samples should be a positive integer, got {num_samples!r}")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def _draw_seed(self):
        g = self.generator if self.generator is not None else loom.default_generator()
        return int(loom.randint(0, 2**62, (1,), generator=g).item())

    def indices(self, seed):
        """The index order of the epoch with this seed, streamed: num_samples may be far more than fits in memory
        (indices with replacement are drawn _CHUNK at a time, permutations one at a time)."""
        g = loom.Generator()
        g.manual_seed(seed)
        n = len(self.data_source)
        if n == 0:
            return
        left = self.num_samples
        while left > 0:
            if self.replacement:
                chunk = loom.randint(0, n, (min(_CHUNK, left),), generator=g).tolist()
            else:
                chunk = loom.randperm(n, generator=g).tolist()[:left]
            left -= len(chunk)
            yield from chunk

    def __iter__(self):
        if self._resume_seed is not None:
            seed, self._resume_seed = self._resume_seed, None
        else:
            seed = self._draw_seed()
        self.epoch_seed = seed
        return self.indices(seed)

    def __len__(self):
        return self.num_samples

    def state_dict(self):
        return {"epoch_seed": self.epoch_seed,
                "generator": None if self.generator is None else list(self.generator.get_state())}

    def load_state_dict(self, state, resume_epoch):
        """Restores the generator; with resume_epoch the next __iter__ replays the saved epoch's order."""
        if self.generator is not None and state.get("generator") is not None:
            self.generator.set_state(list(state["generator"]))
        self._resume_seed = state.get("epoch_seed") if resume_epoch else None


class BatchSampler(Sampler):
    """Groups the indices of `sampler` into lists of batch_size (the last one shorter unless drop_last)."""

    def __init__(self, sampler, batch_size, drop_last):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"BatchSampler: batch_size should be a positive integer, got {batch_size!r}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"BatchSampler: drop_last should be a bool, got {drop_last!r}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self):
        batch = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else (n + self.batch_size - 1) // self.batch_size


class SubsetRandomSampler(Sampler):
    """The given indices in a random order each epoch (drawn from `generator`)."""

    def __init__(self, indices, generator=None):
        self.indices = indices
        self.generator = generator

    def __iter__(self):
        n = len(self.indices)
        if n == 0:
            return
        for i in loom.randperm(n, generator=self.generator).tolist():
            yield self.indices[i]

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """num_samples indices in [0, len(weights)) drawn with probability proportional to `weights`
    (with replacement by default; streamed, _CHUNK draws at a time)."""

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ValueError(f"WeightedRandomSampler: num_samples should be a positive integer value, but got "
                             f"num_samples={num_samples!r}")
        if not isinstance(replacement, bool):
            raise ValueError(f"WeightedRandomSampler: replacement should be a boolean value, but got "
                             f"replacement={replacement!r}")
        weights = weights.detach() if isinstance(weights, loom.Tensor) else loom.tensor(weights, dtype=loom.float64)
        if weights.dim() != 1:
            raise ValueError(f"WeightedRandomSampler: weights should be a 1d sequence but given weights have shape "
                             f"{tuple(weights.shape)}")
        self.weights = weights.to(loom.float64)
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator
        if not replacement and num_samples > weights.shape[0]:
            raise ValueError(f"WeightedRandomSampler: cannot draw {num_samples} samples without replacement from "
                             f"{weights.shape[0]} weights")

    def __iter__(self):
        if not self.replacement:
            yield from loom.multinomial(self.weights, self.num_samples, False, generator=self.generator).tolist()
            return
        left = self.num_samples
        while left > 0:
            k = min(_CHUNK, left)
            yield from loom.multinomial(self.weights, k, True, generator=self.generator).tolist()
            left -= k

    def __len__(self):
        return self.num_samples
