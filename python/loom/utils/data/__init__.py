"""Datasets, samplers and the DataLoader, like torch.utils.data.

With num_workers > 0 batches are loaded in worker processes (torch's semantics: seeding, get_worker_info,
worker_init_fn, prefetch_factor, persistent_workers, timeout, in-order results). In this process, the fast path (a TensorDataset with the default collate function) assembles the next batch on a
C++ background thread (index_select of the batch rows, no GIL, grad mode off) while the caller trains on the
current one. Other datasets are collated in the calling thread. Shuffling draws from a loom.Generator, so a seed
gives a reproducible order, but not the same permutation as PyTorch for that seed (the RNGs differ).
"""
from loom.utils.data.dataset import (ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset,  # noqa: F401
                                     random_split)
from loom.utils.data.sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler,  # noqa: F401
                                     SubsetRandomSampler, WeightedRandomSampler)
from loom.utils.data._worker import WorkerInfo, get_worker_info  # noqa: F401
from loom.utils.data._collate import default_collate  # noqa: F401
from loom.utils.data.dataloader import DataLoader  # noqa: F401
from loom.utils.data.distributed import DistributedSampler  # noqa: F401

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset", "random_split", "Sampler",
           "SequentialSampler", "RandomSampler", "BatchSampler", "default_collate", "DataLoader",
           "DistributedSampler", "SubsetRandomSampler", "WeightedRandomSampler", "get_worker_info", "WorkerInfo"]
