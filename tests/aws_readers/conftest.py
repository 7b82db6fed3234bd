"""The AWS readers Lambda (lambda_src), imported the way its package lays it out: its own root
plus the function's `crosscloud_fn` modules, which the package builder copies in."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
for root in (REPO / "function_src", REPO / "lambda_src"):
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
