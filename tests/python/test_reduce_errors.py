"""Error paths of reductions, sort/topk, softmax and losses: clean Python exceptions naming the op and shapes."""
import pytest

import loom
import loom.nn.functional as F

x = loom.ones(3, 4)
labels = loom.tensor([1, 2, 3])

CASES = [
    (lambda: loom.max(loom.zeros(0)), RuntimeError, "max(): Expected reduction dim"),
    (lambda: loom.min(loom.zeros(0, 2)), RuntimeError, "min(): Expected reduction dim"),
    (lambda: loom.argmax(loom.zeros(0)), IndexError, "argmax(): Expected reduction dim"),
    (lambda: loom.argmin(loom.tensor([True])), RuntimeError, "does not support bool"),
    (lambda: loom.amax(loom.zeros(0, 3), 0), IndexError, "amax(): Expected reduction dim 0"),
    (lambda: loom.max(loom.zeros(0, 3), 0), IndexError, "max(): Expected reduction dim 0"),
    (lambda: loom.amax(x, (0, 0)), ValueError, "appears more than once"),
    (lambda: loom.prod(x, 2), IndexError, "prod: dim 2 is out of range"),
    (lambda: loom.cumsum(x, -3), IndexError, "cumsum: dim -3"),
    (lambda: loom.var(labels), TypeError, "var"),
    (lambda: loom.norm(labels), TypeError, "norm"),
    (lambda: loom.norm(x, "nuc"), NotImplementedError, "nuc"),
    (lambda: loom.norm(loom.zeros(0, 3), float("inf")), RuntimeError, "infinity norm of an empty tensor"),
    (lambda: loom.softmax(labels, 0), TypeError, "softmax: expected a floating point input, got int64"),
    (lambda: loom.log_softmax(x, 2), IndexError, "log_softmax: dim 2"),
    (lambda: loom.topk(x, 5), IndexError, "topk: k (5) is out of range"),
    (lambda: loom.sort(x, 3), IndexError, "sort: dim 3"),
    (lambda: F.cross_entropy(x, loom.tensor([1, 2])), ValueError, "batch_size (3) to match target batch_size (2)"),
    (lambda: F.cross_entropy(x, loom.tensor([1, 2, 9])), IndexError, "Target 9 is out of bounds"),
    (lambda: F.cross_entropy(x, loom.tensor([True, False, True])), TypeError, "integer dtype"),
    (lambda: F.cross_entropy(x, loom.ones(3)), ValueError, "probability target shape (3,)"),
    (lambda: F.cross_entropy(x, labels, weight=loom.ones(3)), ValueError, "weight must have shape (4)"),
    (lambda: F.cross_entropy(x, labels, reduction="avg"), ValueError, "reduction must be one of"),
    (lambda: F.cross_entropy(x, loom.ones(3, 4), ignore_index=1), ValueError, "ignore_index is not supported"),
    (lambda: F.nll_loss(x, loom.tensor([[1, 2, 3]])), ValueError, "nll_loss"),
    (lambda: F.binary_cross_entropy(x * 2, x), RuntimeError, "between 0 and 1"),
    (lambda: F.binary_cross_entropy(x * 0.5, loom.ones(4)), ValueError, "target shape (4,)"),
    (lambda: F.binary_cross_entropy_with_logits(x, loom.ones(4)), ValueError, "Target size (4,)"),
    (lambda: F.mse_loss(x, loom.ones(5)), ValueError, "mse_loss"),
    (lambda: F.l1_loss(labels, labels), TypeError, "l1_loss: expected a floating point input, got int64"),
    (lambda: F.kl_div(x, x, reduction="bad"), ValueError, "batchmean"),
]


@pytest.mark.filterwarnings("ignore:Using a target size")
@pytest.mark.parametrize("index", range(len(CASES)))
def test_error(index):
    call, kind, text = CASES[index]
    with pytest.raises(kind) as info:
        call()
    assert text in str(info.value), f"{info.value!r} does not mention {text!r}"


def test_max_returns_named_tuple():
    result = loom.max(loom.tensor([[1.0, 3.0, 2.0]]), 1)
    assert result.values.tolist() == [3.0] and result.indices.tolist() == [1]
    values, indices = loom.tensor([3.0, 1.0, 2.0]).sort()
    assert indices.tolist() == [1, 2, 0]
