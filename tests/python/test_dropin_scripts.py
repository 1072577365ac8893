"""Training programs in the style of public PyTorch examples (tests/python/scripts/) run unchanged under
`import torch` and under `import loom as torch` (the script's torch imports rewritten, nothing else), and their
losses agree step by step."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tolerances import TRAINING_LOSS_RTOL

SCRIPTS = os.path.join(os.path.dirname(__file__), "scripts")
AS_LOOM = [("import torch.nn.functional as F", "import loom.nn.functional as F"),
           ("import torch.nn as nn", "import loom.nn as nn"), ("import torch\n", "import loom as torch\n")]


def run(source):
    # TORCHDYNAMO_DISABLE: the reference run's torch.compile is the identity, as loom's is for now; inductor would also
    # generate C++ that does not compile under ATEN_CPU_CAPABILITY=default (make py-test-capabilities).
    env = dict(os.environ, PYTHONWARNINGS="ignore", TORCHDYNAMO_DISABLE="1")
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    losses = json.loads(next(line for line in lines if line.startswith("LOSSES "))[len("LOSSES "):])
    return losses, done.stdout


@pytest.mark.parametrize("script", ["char_mlp.py"])
def test_script_runs_under_torch_and_loom_with_the_same_losses(script):
    with open(os.path.join(SCRIPTS, script)) as f:
        source = f.read()
    loom_source = source
    for old, new in AS_LOOM:
        assert old in loom_source
        loom_source = loom_source.replace(old, new)
    assert "import torch" not in loom_source.replace("import loom as torch", "")
    torch_losses, _ = run(source)
    loom_losses, loom_out = run(loom_source)
    assert len(loom_losses) == len(torch_losses) > 0
    np.testing.assert_allclose(loom_losses, torch_losses, rtol=TRAINING_LOSS_RTOL)
    assert loom_losses[-1] < loom_losses[0] * 0.8  # it learned something
    assert "sample: " in loom_out and "predictive entropy" in loom_out
