"""Benchmarks behind `make bench` (docs/design.md "Benchmarks"): numbers, not timed tests.

Each module listed in `bench.__main__.BENCHES` has `run() -> dict[str, float]`; the runner
prints one `name: value` line per entry.
"""
