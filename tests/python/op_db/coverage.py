"""Core registry ops tested outside the conformance table, and where."""
OPS = []

COVERED_ELSEWHERE = {
    # creation ops: test_creation.py
    "full", "arange", "linspace", "fill",
    # raw data movement behind copy_/clone/to: test_views.py and every OpInfo
    "copy",
    # internal ops of views and in-place autograd: test_autograd.py (in-place on views) and view OpInfos
    "slice", "as_strided_scatter", "expand", "permute",
    # sampling ops: test_random.py
    "uniform", "normal", "randint", "randperm", "bernoulli",
    # multinomial: test_torch_surface.py (frequencies, reproducibility, errors against torch)
    "multinomial",
    # moving between devices: test_devices.py, test_device_conformance.py (every OpInfo on a second device)
    "_to_device",
}
