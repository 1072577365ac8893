"""The layer classes of loom.nn, one file per family."""
from loom.nn.modules.activation import *  # noqa: F401,F403
from loom.nn.modules.container import *  # noqa: F401,F403
from loom.nn.modules.conv import *  # noqa: F401,F403
from loom.nn.modules.dropout import *  # noqa: F401,F403
from loom.nn.modules.flatten import *  # noqa: F401,F403
from loom.nn.modules.linear import *  # noqa: F401,F403
from loom.nn.modules.loss import *  # noqa: F401,F403
from loom.nn.modules.normalization import *  # noqa: F401,F403
from loom.nn.modules.pooling import *  # noqa: F401,F403
from loom.nn.modules.sparse import *  # noqa: F401,F403
from loom.nn.modules.transformer import *  # noqa: F401,F403
from loom.nn.modules.padding import *  # noqa: F401,F403,E402
from loom.nn.modules.pixelshuffle import *  # noqa: F401,F403,E402
from loom.nn.modules.upsampling import *  # noqa: F401,F403,E402
from loom.nn.modules.rnn import *  # noqa: F401,F403,E402
