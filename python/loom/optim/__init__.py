"""loom.optim: optimizers and learning-rate schedulers, mirroring torch.optim."""
from loom.optim.optimizer import Optimizer
from loom.optim.sgd import SGD
from loom.optim.adam import Adam
from loom.optim.adamw import AdamW
from loom.optim.adagrad import Adagrad
from loom.optim.adadelta import Adadelta
from loom.optim.adamax import Adamax
from loom.optim.nadam import NAdam
from loom.optim.radam import RAdam
from loom.optim.rmsprop import RMSprop
from loom.optim.lbfgs import LBFGS
from loom.optim import lr_scheduler

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "RMSprop", "LBFGS",
           "lr_scheduler"]
