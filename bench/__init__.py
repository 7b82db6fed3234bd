"""Benchmarks behind `make bench` (DESIGN.md section 7): numbers, not timed tests.

Each module listed in `bench.__main__.BENCHES` has `run() -> dict[str, float]`; the runner
prints one `name: value` line per entry.
"""
