"""Benchmarks: each serves the real thing beside a baseline and prints ratios, never asserts speed."""
