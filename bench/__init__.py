"""loom's benchmarks against PyTorch. The suite: `python -m bench --help` (bench/run.py)."""
