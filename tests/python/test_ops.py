"""Conformance: every op in op_db against PyTorch 2.13 (values, gradients, layouts) and finite differences."""
import numpy as np
import pytest

import loom
from harness import check_finite_differences, check_grads, check_values
from op_db import OPS
from op_db.common import FLOAT32_64

OPS_BY_NAME = {op.name: op for op in OPS}


def samples(op, dtype, seed=0):
    return list(op.samples(dtype, np.random.default_rng(seed)))


@pytest.mark.parametrize("name", sorted(OPS_BY_NAME))
def test_values(name):
    op = OPS_BY_NAME[name]
    for dtype in op.dtypes:
        for sample in samples(op, dtype):
            check_values(op, sample, dtype)


@pytest.mark.parametrize("name", sorted(n for n, op in OPS_BY_NAME.items() if op.noncontiguous))
def test_noncontiguous(name):
    op = OPS_BY_NAME[name]
    for dtype in op.dtypes[:2]:
        for sample in samples(op, dtype):
            check_values(op, sample, dtype, noncontiguous=True)


@pytest.mark.parametrize("name", sorted(n for n, op in OPS_BY_NAME.items() if op.grad))
def test_grads_against_torch(name):
    op = OPS_BY_NAME[name]
    for dtype in FLOAT32_64:
        for sample in samples(op, dtype):
            check_grads(op, sample, dtype, np.random.default_rng(1))


@pytest.mark.parametrize("name", sorted(n for n, op in OPS_BY_NAME.items() if op.grad and op.fd))
def test_finite_differences(name):
    op = OPS_BY_NAME[name]
    for sample in samples(op, loom.float64):
        check_finite_differences(op, sample, np.random.default_rng(2))


def test_every_registered_op_is_in_the_table_or_listed():
    """A new registry op without a conformance entry fails here (internal helper ops are listed)."""
    from op_db import COVERED_ELSEWHERE

    covered = set(OPS_BY_NAME) | set(COVERED_ELSEWHERE)
    missing = sorted(set(loom._C._op_names()) - covered)
    assert not missing, f"ops without an OpInfo entry: {missing}"
