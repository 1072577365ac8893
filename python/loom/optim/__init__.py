"""loom.optim: optimizers and learning-rate schedulers, mirroring torch.optim."""
from loom.optim.optimizer import Optimizer
from loom.optim.sgd import SGD
from loom.optim.adam import Adam
from loom.optim.adamw import AdamW
from loom.optim import lr_scheduler

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler"]
