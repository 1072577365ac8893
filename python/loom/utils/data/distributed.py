"""DistributedSampler: each rank of a data-parallel job visits its own share of the dataset (torch's semantics)."""
import math

import loom
from loom.utils.data.sampler import Sampler


class DistributedSampler(Sampler):
    """Indices for rank `rank` of `num_replicas` (default: the default process group's).

    Each epoch's order is a permutation seeded with seed + epoch (call set_epoch(epoch) before each epoch), the same
    on every rank; rank r takes every num_replicas-th index starting at r. With drop_last the tail that does not
    divide evenly is dropped; otherwise indices are repeated from the start so every rank gets the same count.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None or rank is None:
            import loom.distributed as dist
            if not dist.is_initialized():
                raise RuntimeError("DistributedSampler: give num_replicas and rank, or call "
                                   "loom.distributed.init_process_group() first")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: invalid rank {rank} for num_replicas {num_replicas}")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        n = len(dataset)
        if drop_last and n % num_replicas != 0:
            self.num_samples = n // num_replicas
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            g = loom.Generator()
            g.manual_seed(self.seed + self.epoch)
            indices = loom.randperm(n, generator=g).tolist() if n else []
        else:
            indices = list(range(n))
        if self.drop_last:
            indices = indices[:self.total_size]
        elif indices:
            while len(indices) < self.total_size:
                indices += indices[:self.total_size - len(indices)]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        self.epoch = epoch
