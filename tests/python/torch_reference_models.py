"""PyTorch twins of loom's models (same structure and state_dict names) and weight copying between the two."""
import numpy as np
import torch

import loom
from bench.models import torch_gpt  # the repository root is on sys.path (conftest.py)


def to_torch(t, requires_grad=False):
    """A loom tensor as a torch tensor (copied)."""
    out = torch.from_numpy(np.array(t.detach().numpy(), copy=True))
    return out.requires_grad_(requires_grad)


def to_loom(t, requires_grad=False):
    """A torch tensor as a loom tensor (copied)."""
    out = loom.from_numpy(t.detach().cpu().numpy().copy())
    return out.requires_grad_(requires_grad) if requires_grad else out


def copy_loom_to_torch(loom_module, torch_module):
    """Copies every state_dict entry of a loom module into the torch module of the same name; the key sets must
    be equal."""
    src = loom_module.state_dict()
    dst = torch_module.state_dict()
    assert list(src.keys()) == list(dst.keys()), (list(src.keys()), list(dst.keys()))
    with torch.no_grad():
        for name, value in src.items():
            assert tuple(value.shape) == tuple(dst[name].shape), name
            dst[name].copy_(to_torch(value))


# The GPT twin lives in bench/models.py (the benchmark suite times it against loom's GPT and must build it
# without importing loom); the tests use that same one.
TorchGPT = torch_gpt


def small_cnn(nn, num_classes=10):
    """A Fashion-MNIST-sized CNN with BatchNorm, built from loom.nn or torch.nn (same names in both)."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.0), nn.Linear(16 * 7 * 7, num_classes),
    )
