"""Built-in datasets that need no download: Fashion-MNIST and MNIST (IDX files) and an English text corpus.

Fashion-MNIST comes from Debian's `dataset-fashion-mnist` package (/usr/share/datasets/fashion-mnist); the text
corpus from Debian's `fortunes` package (/usr/share/games/fortunes). MNIST reads IDX files the user supplies.
"""
from loom.datasets.mnist import MNIST, FashionMNIST, read_idx, write_idx  # noqa: F401
from loom.datasets.text import FORTUNES_DIR, text_corpus  # noqa: F401

__all__ = ["FashionMNIST", "MNIST", "read_idx", "write_idx", "text_corpus"]
