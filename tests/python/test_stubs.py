"""loom.compile (identity until the compiler exists, warning once) and loom.onnx (importable, fails only when
used), as scripts that call torch.compile / import torch.onnx at module level need."""
import warnings

import numpy as np
import pytest

import loom
import loom._compile
import loom.nn as nn


def test_compile_returns_the_model_and_warns_once(monkeypatch):
    monkeypatch.setattr(loom._compile, "_warned", False)
    model = nn.Linear(3, 2)
    with pytest.warns(UserWarning, match="compiler is not built"):
        compiled = loom.compile(model)
    assert compiled is model
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert loom.compile(model, mode="max-autotune", fullgraph=True) is model


def test_compile_as_decorator(monkeypatch):
    monkeypatch.setattr(loom._compile, "_warned", True)

    @loom.compile
    def double(x):
        return x * 2

    @loom.compile(dynamic=True)
    def triple(x):
        return x * 3

    np.testing.assert_array_equal(double(loom.tensor([1.0])).numpy(), [2.0])
    np.testing.assert_array_equal(triple(loom.tensor([1.0])).numpy(), [3.0])
    with pytest.raises(TypeError, match="compile: expected a Module or a function"):
        loom.compile(3)


def test_onnx_imports_and_fails_only_when_used():
    import loom.onnx

    assert loom.onnx.is_in_onnx_export() is False
    with pytest.raises(NotImplementedError, match="loom.onnx.export"):
        loom.onnx.export(nn.Linear(2, 2), (loom.zeros(1, 2),), "model.onnx")
