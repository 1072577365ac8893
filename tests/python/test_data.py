"""loom.utils.data: collate vs torch, batching, shuffling, resume, the C++ prefetch thread, error propagation."""
import collections
import faulthandler
import gc
import os
import time

import numpy as np
import pytest
import torch
import torch.utils.data as tud

import loom
from loom.utils.data import (BatchSampler, ConcatDataset, DataLoader, Dataset, IterableDataset, RandomSampler,
                             SequentialSampler, Subset, TensorDataset, default_collate, random_split)


def to_np(x):
    if isinstance(x, (loom.Tensor, torch.Tensor)):
        return x.numpy()
    if isinstance(x, dict):
        return {k: to_np(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_np(v) for v in x]
    return x


def assert_same(a, b):
    """loom batch `a` equals torch batch `b`: structure, dtype and values."""
    if isinstance(b, torch.Tensor):
        assert isinstance(a, loom.Tensor), type(a)
        assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    elif isinstance(b, dict):
        assert isinstance(a, dict) and a.keys() == b.keys()
        for k in b:
            assert_same(a[k], b[k])
    elif isinstance(b, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), (type(a), type(b))
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b


Point = collections.namedtuple("Point", "x y")


def make_samples(lib):
    t = (lambda v, dt: lib.tensor(v, dtype=dt))
    return [
        [t([1.0, 2.0], lib.float32), t([3.0, 4.0], lib.float32)],
        [(t([1, 2], lib.int64), 3), (t([4, 5], lib.int64), 6)],
        [{"a": 1.5, "b": t([[1]], lib.int32), "s": "x"}, {"a": 2.5, "b": t([[2]], lib.int32), "s": "y"}],
        [Point(1, True), Point(2, False)],
        [[1, 2.0], [3, 4.0]],
        [np.arange(3, dtype=np.float32), np.arange(3, 6, dtype=np.float32)],
        [np.int64(4), np.int64(5)],
    ]


@pytest.mark.parametrize("case", range(7))
def test_default_collate_matches_torch(case):
    batch_loom = make_samples(loom)[case]
    batch_torch = make_samples(torch)[case]
    assert_same(default_collate(batch_loom), tud.default_collate(batch_torch))


def test_default_collate_errors():
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([loom.zeros(2), loom.zeros(3)])
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [1]])
    with pytest.raises(TypeError, match="default_collate"):
        default_collate([object(), object()])


def make_tensor_dataset(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64) * 7
    return (TensorDataset(loom.from_numpy(x), loom.from_numpy(y)),
            tud.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)))


class ListDataset(Dataset):
    """A generic (non-tensor) dataset: goes through the Python collation path."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return {"x": loom.tensor([float(i), float(i) + 0.5]), "y": i}


@pytest.mark.parametrize("prefetch", [True, False])
@pytest.mark.parametrize("batch_size, drop_last", [(1, False), (3, False), (3, True), (10, False), (4, True), (32, False)])
def test_batches_match_torch(prefetch, batch_size, drop_last):
    ds, tds = make_tensor_dataset(10)
    loader = DataLoader(ds, batch_size=batch_size, drop_last=drop_last, prefetch=prefetch)
    ref = tud.DataLoader(tds, batch_size=batch_size, drop_last=drop_last)
    assert len(loader) == len(ref)
    got = list(loader)
    want = list(ref)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert_same(a, b)


def test_generic_dataset_matches_torch():
    class TorchList(tud.Dataset):
        def __len__(self):
            return 7

        def __getitem__(self, i):
            return {"x": torch.tensor([float(i), float(i) + 0.5]), "y": i}

    got = list(DataLoader(ListDataset(7), batch_size=3))
    want = list(tud.DataLoader(TorchList(), batch_size=3))
    assert len(got) == 3
    for a, b in zip(got, want):
        assert_same(a, b)
    # batch_size=None: no batching, samples pass through.
    assert [s["y"] for s in DataLoader(ListDataset(3), batch_size=None)] == [0, 1, 2]


def test_len_and_samplers():
    ds, _ = make_tensor_dataset(10)
    assert len(DataLoader(ds, batch_size=3)) == 4
    assert len(DataLoader(ds, batch_size=3, drop_last=True)) == 3
    assert list(SequentialSampler(ds)) == list(range(10))
    assert list(BatchSampler(range(7), 3, False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(BatchSampler(range(7), 3, True)) == [[0, 1, 2], [3, 4, 5]]
    bs = BatchSampler(SequentialSampler(ds), 4, False)
    loader = DataLoader(ds, batch_sampler=bs)
    assert len(loader) == 3
    assert [b[1].tolist() for b in loader][-1] == [56, 63]
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, batch_sampler=bs, batch_size=2)
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, sampler=SequentialSampler(ds), shuffle=True)


def epoch_labels(loader):
    return [b[1].tolist() for b in loader]


def test_shuffle_reproducible_and_seed_dependent():
    ds, _ = make_tensor_dataset(50)

    def run(seed, epochs=2):
        g = loom.Generator()
        g.manual_seed(seed)
        loader = DataLoader(ds, batch_size=8, shuffle=True, generator=g)
        return [epoch_labels(loader) for _ in range(epochs)]

    a, b, c = run(1), run(1), run(2)
    assert a == b
    assert a != c
    assert a[0] != a[1]  # a new order each epoch
    for epoch in a + c:  # each epoch is a permutation of all samples
        assert sorted(sum(epoch, [])) == [7 * i for i in range(50)]
    # The Python path shuffles identically.
    g = loom.Generator()
    g.manual_seed(1)
    assert epoch_labels(DataLoader(ds, batch_size=8, shuffle=True, generator=g, prefetch=False)) == a[0]


def test_random_sampler_replacement_and_num_samples():
    g = loom.Generator()
    g.manual_seed(0)
    s = list(RandomSampler(range(5), replacement=True, num_samples=20, generator=g))
    assert len(s) == 20 and all(0 <= i < 5 for i in s)
    s = list(RandomSampler(range(5), num_samples=12, generator=g))
    assert len(s) == 12 and sorted(s[:5]) == list(range(5))


@pytest.mark.parametrize("prefetch", [True, False])
@pytest.mark.parametrize("user_generator", [True, False])
def test_resume_mid_epoch(prefetch, user_generator):
    ds, _ = make_tensor_dataset(23)

    def new_loader():
        g = None
        if user_generator:
            g = loom.Generator()
            g.manual_seed(123)
        return DataLoader(ds, batch_size=4, shuffle=True, generator=g, prefetch=prefetch)

    loom.manual_seed(7)
    full = new_loader()
    reference = [epoch_labels(full) for _ in range(3)]

    loom.manual_seed(7)
    loader = new_loader()
    seen = [epoch_labels(loader)]
    it = iter(loader)
    seen.append([next(it)[1].tolist() for _ in range(2)])
    state = loader.state_dict()
    rng = loom.get_rng_state()
    assert state["epoch"] == 1 and state["batches_yielded"] == 2
    del it

    loom.manual_seed(999)  # a fresh process: everything else random differs...
    restored = new_loader()
    loom.set_rng_state(rng)  # ...until the checkpoint's RNG state is restored
    restored.load_state_dict(state)
    rest = epoch_labels(restored)
    assert seen[1] + rest == reference[1]
    assert len(rest) == len(reference[1]) - 2
    assert epoch_labels(restored) == reference[2]
    assert seen[0] == reference[0]


def test_resume_at_epoch_boundary():
    ds, _ = make_tensor_dataset(12)
    g = loom.Generator()
    g.manual_seed(5)
    loader = DataLoader(ds, batch_size=5, shuffle=True, generator=g)
    ref = [epoch_labels(loader) for _ in range(3)]
    g.manual_seed(5)
    loader = DataLoader(ds, batch_size=5, shuffle=True, generator=g)
    epoch_labels(loader)
    state = loader.state_dict()
    assert state["epoch"] == 1 and state["batches_yielded"] == 0
    g2 = loom.Generator()
    restored = DataLoader(ds, batch_size=5, shuffle=True, generator=g2)
    restored.load_state_dict(state)
    assert [epoch_labels(restored) for _ in range(2)] == ref[1:]


@pytest.fixture
def hang_guard():
    """A deadlock in the prefetcher fails the run (traceback + exit) instead of hanging it."""
    faulthandler.dump_traceback_later(60, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def test_prefetch_early_break_no_hang(hang_guard):
    n = 2000
    ds = TensorDataset(loom.arange(n * 64, dtype=loom.float32).reshape(n, 64), loom.arange(n))
    def os_threads():
        return len(os.listdir("/proc/self/task"))

    threads_before = os_threads()
    start = time.time()
    for _ in range(20):
        for i, _batch in enumerate(DataLoader(ds, batch_size=16)):
            if i == 1:
                break
    it = iter(DataLoader(ds, batch_size=16, shuffle=True))
    next(it)
    assert os_threads() == threads_before + 1  # the C++ prefetch thread, waiting on the full queue
    del it
    gc.collect()
    assert time.time() - start < 10
    assert os_threads() == threads_before  # every worker was stopped and joined
    # Batches come back with no autograd history even if the data requires grad.
    w = loom.ones(8, 2, requires_grad=True)
    batch = next(iter(DataLoader(TensorDataset(w), batch_size=4)))
    assert not batch[0].requires_grad
    assert batch[0].tolist() == [[1.0, 1.0]] * 4


def test_prefetch_worker_error_is_raised(hang_guard):
    ds, _ = make_tensor_dataset(10)

    class BadSampler:
        def __iter__(self):
            return iter([[0, 1], [2, 100], [3, 4]])

        def __len__(self):
            return 3

    it = iter(DataLoader(ds, batch_sampler=BadSampler()))
    assert next(it)[1].tolist() == [0, 7]
    with pytest.raises(IndexError):
        next(it)
    with pytest.raises(StopIteration):
        next(it)


def test_python_dataset_error_is_raised():
    class Bad(ListDataset):
        def __getitem__(self, i):
            if i == 5:
                raise KeyError("sample 5 is broken")
            return super().__getitem__(i)

    loader = DataLoader(Bad(8), batch_size=2)
    it = iter(loader)
    next(it), next(it)
    with pytest.raises(KeyError, match="sample 5 is broken"):
        next(it)


def test_iterable_dataset():
    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(7))

        def __len__(self):
            return 7

    loader = DataLoader(Stream(), batch_size=3)
    assert [b.tolist() for b in loader] == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(loader) == 3
    assert [b.tolist() for b in DataLoader(Stream(), batch_size=3, drop_last=True)] == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(ValueError, match="IterableDataset"):
        DataLoader(Stream(), shuffle=True)


def test_random_split_subset_concat():
    ds, _ = make_tensor_dataset(10)
    g = loom.Generator()
    g.manual_seed(3)
    a, b = random_split(ds, [7, 3], generator=g)
    assert (len(a), len(b)) == (7, 3)
    assert sorted(a.indices + b.indices) == list(range(10))
    g.manual_seed(3)
    a2, _ = random_split(ds, [7, 3], generator=g)
    assert a2.indices == a.indices
    parts = random_split(range(10), [0.5, 0.3, 0.2], generator=g)
    assert [len(p) for p in parts] == [5, 3, 2]
    with pytest.raises(ValueError, match="does not equal"):
        random_split(ds, [5, 6])
    sub = Subset(ds, [9, 0])
    assert sub[0][1].item() == 63
    assert [b[1].tolist() for b in DataLoader(sub, batch_size=2)] == [[63, 0]]
    # A Subset of a TensorDataset takes the C++ path and matches the Python path.
    it = iter(DataLoader(a, batch_size=3))
    assert it._prefetcher is not None
    assert [b[1].tolist() for b in it] == [b[1].tolist() for b in DataLoader(a, batch_size=3, prefetch=False)]
    cat = ConcatDataset([sub, Subset(ds, [1])])
    assert len(cat) == 3 and cat[2][1].item() == 7 and cat[-1][1].item() == 7
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(loom.zeros(3), loom.zeros(4))


def test_prefetch_overlaps_with_the_caller(hang_guard):
    """The worker assembles batch k+1 while the caller holds batch k (the GIL is released while it waits)."""
    n = 64
    ds = TensorDataset(loom.arange(n * 200000, dtype=loom.float32).reshape(n, 200000))
    it = iter(DataLoader(ds, batch_size=8))
    first = next(it)
    time.sleep(0.2)  # "training step": the worker fills the queue meanwhile
    assert it._prefetcher.remaining <= 7
    rest = list(it)
    assert len(rest) == 7 and rest[-1][0].shape == (8, 200000)
    assert first[0][0, :3].tolist() == [0.0, 1.0, 2.0]


def test_worker_and_caller_run_loom_ops_concurrently():
    """The worker's index_select (allocator, dispatcher, OpenMP) runs while the caller does autograd work."""
    n, d = 256, 4096
    x = loom.arange(n * d, dtype=loom.float32).reshape(n, d)
    ds = TensorDataset(x, loom.arange(n))
    g = loom.Generator()
    g.manual_seed(0)
    w = loom.randn(d, 8, requires_grad=True)
    for xb, yb in DataLoader(ds, batch_size=32, shuffle=True, generator=g):
        loss = (xb @ w).sum()  # the caller records a graph with grad on; the worker has grad off
        loss.backward()
        rows = yb.tolist()
        np.testing.assert_array_equal(xb.numpy(), x.numpy()[rows])
    assert w.grad is not None and loom.is_grad_enabled()


# ------------------------------------------------------------------ in-place updates of the dataset during prefetch


def test_prefetch_sees_in_place_updates_like_torch(hang_guard):
    """The training step rewrites the whole dataset in place after every batch (the review's repro, with a torch
    DataLoader beside it). Each batch must hold the values written just before it was requested: no stale batch
    (the worker gathered it before the update) and no torn row (half old, half new)."""
    rows, width = 64, 100_000
    data, reference = loom.zeros(rows, width), torch.zeros(rows, width)
    torn = stale = regathered = 0
    value = 0.0  # what the dataset holds when the next batch is requested
    for epoch in range(6):
        it = iter(DataLoader(TensorDataset(data), batch_size=2))
        prefetcher = it._prefetcher
        assert prefetcher is not None
        for step, ((x,), (xt,)) in enumerate(zip(it, tud.DataLoader(tud.TensorDataset(reference), batch_size=2))):
            torn += int((x.amin(1) != x.amax(1)).sum())
            stale += int((x[:, 0] != value).sum())
            np.testing.assert_array_equal(x.numpy(), xt.numpy())
            value = float(epoch * 100 + step + 1)
            data.fill_(value)   # the "training step" updates the dataset in place
            reference.fill_(value)
        regathered += prefetcher.regathered
    assert (torn, stale) == (0, 0)
    # Every batch but each epoch's first was prefetched before the previous step's write, so gathered again.
    assert regathered == 6 * (rows // 2 - 1)


def test_prefetch_partial_updates_shuffled_match_torch(hang_guard):
    """Relabelling and row updates (index_put, a slice's mul_) of a two-tensor dataset, shuffled: every batch equals
    what torch's loader returns for the same order and the same updates. Without updates nothing is regathered."""
    n = 96
    x, y = loom.arange(n * 5, dtype=loom.float32).reshape(n, 5), loom.arange(n)
    xt, yt = torch.from_numpy(x.numpy().copy()), torch.from_numpy(y.numpy().copy())
    for epoch in range(3):
        order = np.random.default_rng(epoch).permutation(n).tolist()
        it = iter(DataLoader(TensorDataset(x, y), batch_size=8, sampler=order))
        prefetcher = it._prefetcher
        assert prefetcher is not None
        reference = tud.DataLoader(tud.TensorDataset(xt, yt), batch_size=8, sampler=order)
        for step, ((xb, yb), (xr, yr)) in enumerate(zip(it, reference)):
            np.testing.assert_array_equal(xb.numpy(), xr.numpy())
            np.testing.assert_array_equal(yb.numpy(), yr.numpy())
            if epoch == 2:
                continue  # no updates: every prefetched batch is used as is
            rows = (np.arange(4) * 7 + step * 5 + epoch) % n
            y[loom.from_numpy(rows)] = loom.tensor([-1, -2, -3, -4]) * (step + 1)
            yt[torch.from_numpy(rows)] = torch.tensor([-1, -2, -3, -4]) * (step + 1)
            x[step:step + 3].mul_(2.0)
            xt[step:step + 3].mul_(2.0)
        assert step == n // 8 - 1
        assert prefetcher.regathered == (0 if epoch == 2 else n // 8 - 1)
