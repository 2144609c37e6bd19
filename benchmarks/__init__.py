"""Benchmarks: Steadfast against in-run baselines, driven by wrk (`make bench`)."""
