"""loom.nn.functional: the functional forms of layers, activations and losses, as torch.nn.functional."""
from loom._C import gelu, leaky_relu, relu, sigmoid, silu, softplus, tanh  # noqa: F401
from loom._C import embedding, linear, one_hot, pad  # noqa: F401
from loom.nn._functional_layers import *  # noqa: F401,F403  (conv, pooling, norms, dropout, attention)
from loom.nn._functional_losses import *  # noqa: F401,F403  (softmax family and losses)
from loom.nn._functional_activations import *  # noqa: F401,F403,E402  (elu, selu, celu)
from loom.nn._functional_spatial import *  # noqa: F401,F403,E402  (pad with every mode, interpolate, pixel_shuffle)
