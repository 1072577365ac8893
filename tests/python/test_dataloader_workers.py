"""DataLoader(num_workers=N) against torch.utils.data's semantics: order, seeding, get_worker_info, errors,
shutdown, persistent workers, IterableDataset sharding; and the streaming/weighted samplers."""
import multiprocessing
import os
import random
import time

import numpy as np
import pytest
import torch
import torch.utils.data._utils.worker as torch_worker

import loom
from loom.utils.data import (DataLoader, Dataset, IterableDataset, RandomSampler, SubsetRandomSampler,
                             WeightedRandomSampler, get_worker_info)
from loom.utils.data import _worker


class Probe(Dataset):
    """Sample i: i, the worker's id and seed, and draws from each RNG the worker seeds."""

    def __len__(self):
        return 12

    def __getitem__(self, i):
        info = get_worker_info()
        return {"i": i, "id": info.id, "n": info.num_workers, "seed": info.seed, "pid": os.getpid(),
                "py": random.random(), "np": float(np.random.rand()), "loom": loom.rand(1).item(),
                "x": loom.full((2, 3), float(i))}


class Shard(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))


class Failing(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 5:
            raise ValueError(f"bad sample {i}")
        return i


def test_order_worker_info_and_tensors_match_torch():
    loader = DataLoader(Probe(), batch_size=3, num_workers=2, generator=loom.Generator().manual_seed(0))
    batches = list(loader)
    ref = list(torch.utils.data.DataLoader(range(12), batch_size=3, num_workers=2))
    assert [b["i"].tolist() for b in batches] == [r.tolist() for r in ref]  # in order, same batches
    assert [b["id"].tolist() for b in batches] == [[0] * 3, [1] * 3, [0] * 3, [1] * 3]  # round-robin, as torch
    assert all(b["n"].tolist() == [2] * 3 for b in batches)
    assert batches[0]["x"].shape == (3, 2, 3) and batches[3]["x"][2].tolist() == [[11.0] * 3] * 2
    assert len({b["pid"][0].item() for b in batches} | {os.getpid()}) == 3  # two worker processes
    seeds = {b["id"][0].item(): b["seed"][0].item() for b in batches}
    assert seeds[1] == seeds[0] + 1  # worker seed = base_seed + worker id
    # each worker's RNGs are seeded as torch seeds them
    for b in batches[:2]:
        wid, seed = b["id"][0].item(), b["seed"][0].item()
        rng = random.Random(seed)
        np_rng = np.random.RandomState(_worker.numpy_seed(seed - wid, wid))
        if b is batches[0]:
            assert b["py"].tolist() == pytest.approx([rng.random() for _ in range(3)])
            assert b["np"].tolist() == pytest.approx([np_rng.rand() for _ in range(3)])


def test_numpy_seed_is_torchs_generate_state():
    for base, wid in [(0, 0), (12345, 3), (2**62 - 1, 7), (987654321987, 1)]:
        assert _worker.numpy_seed(base, wid) == torch_worker._generate_state(base, wid)


def test_base_seed_comes_from_the_generator():
    def seeds(seed):
        loader = DataLoader(Probe(), batch_size=6, num_workers=2, generator=loom.Generator().manual_seed(seed))
        return [b["loom"].tolist() for b in loader]
    assert seeds(1) == seeds(1) and seeds(1) != seeds(2)


def test_worker_init_fn_and_iterable_sharding_match_torch():
    def init(worker_id):
        assert get_worker_info().id == worker_id

    ours = [b.tolist() for b in DataLoader(Shard(11), batch_size=2, num_workers=3, worker_init_fn=init)]

    class TorchShard(torch.utils.data.IterableDataset):
        def __iter__(self):
            info = torch.utils.data.get_worker_info()
            return iter(range(info.id, 11, info.num_workers))
    ref = [b.tolist() for b in torch.utils.data.DataLoader(TorchShard(), batch_size=2, num_workers=3)]
    assert ours == ref
    no_batch = [b for b in DataLoader(Shard(5), batch_size=None, num_workers=2)]
    assert no_batch == [0, 1, 2, 3, 4]
    assert [b.tolist() for b in DataLoader(Shard(7), batch_size=3, num_workers=2, drop_last=True)] == [[0, 2, 4],
                                                                                                      [1, 3, 5]]


def test_error_in_worker_is_raised_with_its_traceback_and_workers_stop():
    loader = DataLoader(Failing(), batch_size=2, num_workers=2)
    it = iter(loader)
    assert next(it).tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"(?s)Caught ValueError in DataLoader worker process 0.*"
                                         r"Traceback.*__getitem__.*bad sample 5"):
        list(it)
    assert not it.alive
    for w in it._state["workers"]:
        assert not w.is_alive()

    def bad_init(worker_id):
        raise KeyError("init failed")
    with pytest.raises(KeyError, match="init failed"):
        list(DataLoader(Shard(4), batch_size=1, num_workers=1, worker_init_fn=bad_init))


def test_clean_shutdown_on_exhaustion_break_and_del():
    loader = DataLoader(Probe(), batch_size=2, num_workers=2)
    it = iter(loader)
    workers = list(it._state["workers"])
    list(it)
    assert all(not w.is_alive() for w in workers)
    it = iter(loader)
    next(it)
    workers = list(it._state["workers"])
    del it  # a loop left early: the iterator's finalizer stops the workers
    for w in workers:
        w.join(5)
        assert not w.is_alive() and w.exitcode is not None
    assert multiprocessing.active_children() == []


def test_keyboard_interrupt_in_parent_stops_workers():
    class Slow(Dataset):
        def __len__(self):
            return 100

        def __getitem__(self, i):
            time.sleep(0.01)
            return i
    it = iter(DataLoader(Slow(), batch_size=1, num_workers=2, collate_fn=lambda b: b))
    next(it)
    workers = list(it._state["workers"])
    # Ctrl-C while the parent waits for the next batch (whether or not that batch has already arrived out of order).
    it._next_data = lambda: (_ for _ in ()).throw(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        next(it)
    assert all(not w.is_alive() for w in workers)


def test_timeout_and_dead_worker():
    class Hang(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            time.sleep(30)

    t0 = time.time()
    with pytest.raises(RuntimeError, match="DataLoader timed out after 0.5 seconds"):
        next(iter(DataLoader(Hang(), batch_size=1, num_workers=1, timeout=0.5)))
    assert time.time() - t0 < 10

    class Die(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            os._exit(3)
    with pytest.raises(RuntimeError, match=r"DataLoader worker \(pid\(s\) \d+\) exited unexpectedly"):
        next(iter(DataLoader(Die(), batch_size=1, num_workers=1)))


def test_persistent_workers_keep_processes_and_restart_iterables():
    loader = DataLoader(Probe(), batch_size=4, num_workers=2, persistent_workers=True, prefetch_factor=3)
    pids = []
    for _ in range(3):
        batches = list(loader)
        assert [b["i"].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
        pids.append({b["pid"][0].item() for b in batches})
    assert pids[0] == pids[1] == pids[2]
    it = iter(loader)
    next(it)  # an epoch left early: the next one starts cleanly
    assert [b["i"].tolist() for b in loader][0] == [0, 1, 2, 3]
    shard = DataLoader(Shard(6), batch_size=2, num_workers=2, persistent_workers=True)
    assert [b.tolist() for b in shard] == [b.tolist() for b in shard] == [[0, 2], [1, 3], [4], [5]]
    loader._iterator.close()
    shard._iterator.close()


def test_argument_checks_match_torch():
    for kwargs in [{"num_workers": -1}, {"prefetch_factor": 2}, {"persistent_workers": True}, {"timeout": -1}]:
        with pytest.raises(ValueError):
            torch.utils.data.DataLoader(range(3), **kwargs)
        with pytest.raises(ValueError):
            DataLoader(range(3), **kwargs)


def test_resume_with_workers():
    loader = DataLoader(Probe(), batch_size=2, num_workers=2, shuffle=True, generator=loom.Generator().manual_seed(3))
    full = [b["i"].tolist() for b in loader]
    loader = DataLoader(Probe(), batch_size=2, num_workers=2, shuffle=True, generator=loom.Generator().manual_seed(3))
    it = iter(loader)
    first = [next(it)["i"].tolist() for _ in range(2)]
    state = loader.state_dict()
    del it
    fresh = DataLoader(Probe(), batch_size=2, num_workers=2, shuffle=True, generator=loom.Generator().manual_seed(99))
    fresh.load_state_dict(state)
    assert first + [b["i"].tolist() for b in fresh] == full


def test_random_sampler_with_replacement_streams():
    sampler = RandomSampler(range(10), replacement=True, num_samples=10**10,
                            generator=loom.Generator().manual_seed(0))
    t0 = time.time()
    loader = DataLoader(list(range(10)), batch_size=64, sampler=sampler)
    assert len(loader) == -(-10**10 // 64)
    first = [next(iter(loader)) for _ in range(3)]
    assert time.time() - t0 < 2.0
    assert all(len(b) == 64 and 0 <= b.min().item() and b.max().item() < 10 for b in first)
    small = RandomSampler(range(7), replacement=True, num_samples=10000, generator=loom.Generator().manual_seed(1))
    counts = np.bincount(list(small), minlength=7)
    assert counts.sum() == 10000 and counts.min() > 1100  # uniform: 1428 expected each
    perm = RandomSampler(range(5), num_samples=12, generator=loom.Generator().manual_seed(2))
    drawn = list(perm)
    assert len(drawn) == 12 and sorted(drawn[:5]) == list(range(5)) and sorted(drawn[5:10]) == list(range(5))


def test_weighted_and_subset_samplers():
    g = loom.Generator().manual_seed(0)
    draws = list(WeightedRandomSampler([1.0, 0.0, 3.0], 20000, generator=g))
    counts = np.bincount(draws, minlength=3)
    assert counts[1] == 0 and abs(counts[2] / 20000 - 0.75) < 0.02
    no_rep = list(WeightedRandomSampler(loom.tensor([0.2, 0.3, 0.5, 1e-9]), 3, replacement=False, generator=g))
    assert len(set(no_rep)) == 3
    with pytest.raises(ValueError):
        WeightedRandomSampler([1.0, 2.0], 3, replacement=False)
    with pytest.raises(ValueError, match="num_samples"):
        torch.utils.data.WeightedRandomSampler([1.0], 0)
    with pytest.raises(ValueError, match="num_samples"):
        WeightedRandomSampler([1.0], 0)
    subset = list(SubsetRandomSampler([10, 20, 30, 40], generator=g))
    assert sorted(subset) == [10, 20, 30, 40]


def test_tensors_pickle():
    import pickle
    for dtype in [loom.float32, loom.bfloat16, loom.float16, loom.int64, loom.bool, loom.uint8]:
        t = (loom.arange(6).reshape(2, 3) % 3).to(dtype)
        back = pickle.loads(pickle.dumps(t.t()))
        assert back.dtype == dtype and back.tolist() == t.t().tolist()
    p = loom.nn.Parameter(loom.ones(2))
    q = pickle.loads(pickle.dumps(p))
    assert type(q) is loom.nn.Parameter and q.requires_grad and q.tolist() == [1.0, 1.0]
