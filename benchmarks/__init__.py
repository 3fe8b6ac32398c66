"""Benchmarks run against the real test bed; results are kept in benchmarks/results/."""
