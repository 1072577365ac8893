"""Functional layers: convolution, pooling, normalisation, dropout, attention."""
