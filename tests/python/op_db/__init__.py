"""The conformance table: every op's OpInfo, collected from one module per op family.

Adding an op: append an OpInfo to the family module's OPS list. The tests in test_ops.py then check its
values (every listed dtype), gradients (against PyTorch), finite differences (float64), non-contiguous inputs,
broadcasting and zero-size samples, with no per-op test code.
"""
import importlib
import pkgutil

OPS = []
# Registry ops a family tests in dedicated test files instead (each family module may list them).
COVERED_ELSEWHERE = set()
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module == "common":
        continue
    _family = importlib.import_module(f"{__name__}.{_module}")
    OPS.extend(_family.OPS)
    COVERED_ELSEWHERE |= set(getattr(_family, "COVERED_ELSEWHERE", ()))

_names = [op.name for op in OPS]
assert len(_names) == len(set(_names)), f"duplicate OpInfo names: {sorted(n for n in _names if _names.count(n) > 1)}"
