"""Benchmarks against reference implementations measured in the same run (ratios, medians)."""
