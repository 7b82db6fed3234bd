"""`python -m bench [--quick] [name...]`: run the benchmark modules and print `name: value` lines.

`--quick` (what `make test` runs, so that CI exercises every bench): the same code paths with a
few repetitions; its figures are noisier and are not the ones the README quotes.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import time

# Add a module here (with `run() -> dict[str, float]`, optionally `run(quick: bool)`) to have
# `make bench` print its figures.
BENCHES: tuple[str, ...] = (
    "bench.function_bench",
    "bench.program_bench",
    "bench.package_bench",
    "bench.resilience_bench",
)


def _format(value: float | int | str) -> str:
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few repetitions (CI)")
    parser.add_argument("names", nargs="*", help="only these benches (e.g. package_bench)")
    args = parser.parse_args(argv)
    selected = [b for b in BENCHES if not args.names or b.rsplit(".", 1)[-1] in args.names]
    if not selected:
        print(f"no benchmark called {' or '.join(args.names)}; known: {', '.join(BENCHES)}")
        return 2
    for module_name in selected:
        run = importlib.import_module(module_name).run
        started = time.monotonic()
        quick = (
            {"quick": True} if args.quick and "quick" in inspect.signature(run).parameters else {}
        )
        for name, value in run(**quick).items():
            print(f"{name}: {_format(value)}", flush=True)
        if args.quick:
            took = time.monotonic() - started
            print(f"# {module_name.rsplit('.', 1)[-1]} took {took:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
