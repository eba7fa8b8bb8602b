"""Benchmarks: each prints a table whose figures are ratios against a baseline run alongside."""
