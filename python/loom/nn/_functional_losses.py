"""Functional softmax family and losses."""
