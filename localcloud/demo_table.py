"""The table `make demo` prints: one row per call, fitted to a terminal of `WIDTH` columns.

A row is a scenario's outcome: who called (the identity), what it called, what was expected,
what happened, and the calls the fakes counted. Any scenario (localcloud/scenarios.py,
localcloud/teams.py, or a new one) becomes a row through `row_of`; long cells wrap inside their
column instead of widening the table, so new rows fit without touching the layout.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from localcloud.scenarios import Outcome

WIDTH = 100
"""The widest line the demo prints."""

LEGEND: tuple[tuple[str, str], ...] = (
    ("identity", "the app (and so the managed identity) that called"),
    ("call", "the route under /api/ and its query values"),
    (
        "expected / got",
        "HTTP status, the function's error code and the cloud's own refusal code, and what the "
        'answer held ("as expected": an error answer exactly as expected)',
    ),
    ("tok", "token requests the app made to the fake Entra ID during the call"),
    ("sts", "AssumeRoleWithWebIdentity exchanges the STS front received for it during the call"),
    ("ms", "the call's duration; a warm request must show tok 0 and sts 0"),
)
"""What each column means, printed above the table."""


@dataclass(frozen=True)
class Row:
    mark: str
    """"ok" when the outcome is the expected one, else "FAIL"."""
    identity: str
    call: str
    expected: str
    got: str
    tok: int
    sts: int
    ms: float

    def cells(self) -> tuple[str, ...]:
        return (
            self.mark,
            self.identity,
            self.call,
            self.expected,
            self.got,
            str(self.tok),
            str(self.sts),
            f"{self.ms:.0f}",
        )


HEADER = ("", "identity", "call", "expected", "got", "tok", "sts", "ms")
NUMERIC = frozenset({5, 6, 7})
GAP = "  "
MIN_TEXT = 10


def row_of(outcome: Outcome, who: Mapping[str, str]) -> Row:
    case = outcome.case
    return Row(
        mark="ok" if outcome.met else "FAIL",
        identity=who.get(case.app, case.app),
        call=case.what,
        expected=case.expected,
        # An error answer that is exactly the expected one is not printed twice.
        got="as expected" if outcome.met and outcome.got == case.expected else outcome.got,
        tok=outcome.tokens,
        sts=outcome.sts,
        ms=outcome.reply.ms,
    )


def _height(cells: Sequence[str], widths: Sequence[int]) -> int:
    """How many lines the cells take, each wrapped into its column."""
    return max(len(_wrap(cell, widths[i])) for i, cell in enumerate(cells))


def _wrap(cell: str, width: int) -> list[str]:
    return textwrap.wrap(cell, width, break_on_hyphens=False) or [""]


def _broken(cells: Sequence[str], widths: Sequence[int]) -> int:
    """How many words are wider than their column (and so get cut)."""
    return sum(len(word) > widths[i] for i, cell in enumerate(cells) for word in cell.split())


def _fit(table: Sequence[Sequence[str]], floors: list[int], width: int) -> list[int]:
    """Column widths for a line of at most `width`: narrow, one character at a time, the column
    that cuts the fewest words, then costs the fewest wrapped lines (the widest on a tie), never
    below its floor."""
    widths = [max(len(cells[i]) for cells in table) for i in range(len(floors))]
    while sum(widths) + len(GAP) * (len(widths) - 1) > width:
        candidates = [i for i in range(len(widths)) if widths[i] > floors[i]]
        if not candidates:
            break  # a single word wider than the terminal: let that line overflow

        def cost(i: int) -> tuple[int, int, int]:
            narrower = [w - (j == i) for j, w in enumerate(widths)]
            return (
                sum(_broken(cells, narrower) for cells in table),
                sum(_height(cells, narrower) for cells in table),
                -widths[i],
            )

        widths[min(candidates, key=cost)] -= 1
    return widths


def render(rows: Sequence[Row], width: int = WIDTH) -> str:
    table = [HEADER, *(row.cells() for row in rows)]
    # Numbers and the mark never wrap; a text column keeps its words whole while the line can
    # fit, and is cut no narrower than MIN_TEXT.
    floors = [
        max(len(c[i]) if i in NUMERIC or i == 0 else min(MIN_TEXT, len(c[i])) for c in table)
        for i in range(len(HEADER))
    ]
    widths = _fit(table, floors, width)

    def lines(cells: tuple[str, ...]) -> list[str]:
        wrapped = [_wrap(cell, widths[i]) for i, cell in enumerate(cells)]
        out = []
        for depth in range(max(len(parts) for parts in wrapped)):
            parts = [p[depth] if depth < len(p) else "" for p in wrapped]
            padded = [
                part.rjust(widths[i]) if i in NUMERIC else part.ljust(widths[i])
                for i, part in enumerate(parts)
            ]
            out.append(GAP.join(padded).rstrip())
        return out

    rule = tuple("-" * w for w in widths)
    body = [line for cells in table[1:] for line in lines(cells)]
    return "\n".join([*lines(HEADER), GAP.join(rule), *body])


def legend(width: int = WIDTH) -> str:
    label = max(len(column) for column, _ in LEGEND)
    lines = ["Columns:"]
    for column, meaning in LEGEND:
        lines += textwrap.wrap(
            meaning,
            width,
            initial_indent=f"  {column:<{label}}  ",
            subsequent_indent=" " * (label + 4),
        )
    return "\n".join(lines)


def fit(text: str, width: int = WIDTH) -> str:
    """`text` with every line longer than `width` wrapped, continuing under its own indent plus
    four spaces (a single word wider than that, such as a long ARN, stays whole)."""
    out = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        out += textwrap.wrap(
            line,
            width,
            subsequent_indent=indent + "    ",
            break_long_words=False,
            break_on_hyphens=False,
        )
    return "\n".join(out)
