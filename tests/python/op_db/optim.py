"""Optimizer ops: in-place multi-tensor updates with no outputs and no gradient, so they have no OpInfo; their
values are checked against torch.optim step by step in test_optim.py."""
OPS = []
COVERED_ELSEWHERE = {"_fused_sgd_", "_fused_adam_", "_fused_adamw_"}
