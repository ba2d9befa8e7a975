"""Benchmarks: each writes its results as JSON under bench/results/."""
