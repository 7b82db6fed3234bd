"""`python -m bench`: run every benchmark module and print `name: value` lines."""

from __future__ import annotations

import importlib
import sys

# Add a module here (with `run() -> dict[str, float]`) to have `make bench` print its figures.
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


def main(names: list[str]) -> int:
    selected = [b for b in BENCHES if not names or b.rsplit(".", 1)[-1] in names]
    if not selected:
        print(f"no benchmark called {' or '.join(names)}; known: {', '.join(BENCHES)}")
        return 2
    for module_name in selected:
        for name, value in importlib.import_module(module_name).run().items():
            print(f"{name}: {_format(value)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
