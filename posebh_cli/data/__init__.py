"""Dataset readers, prepared indexes, the synthetic dataset, top-down transforms and sampling."""
