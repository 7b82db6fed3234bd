"""`make demo`'s table fits 100 columns whatever rows a scenario adds, and loses no cell."""

from __future__ import annotations

from localcloud import demo_table
from localcloud.cloud import Reply
from localcloud.scenarios import Case, Outcome, cases

WHO = {"sami": "sami app (program)", "caller": "a person without CrossCloud.Read in Entra"}


def outcomes() -> list[Outcome]:
    found = [Outcome(case, Reply(case.status, None, 12.0), 2, 1, None) for case in cases("x.txt")]
    long = Case(
        "long",
        "caller",
        "read",
        {"name": "reports/2026/a-rather-long-object-name.csv"},
        status=403,
        code="forbidden",
        cause="the caller's token has no CrossCloud.Read role",
    )
    error = {"error": {"code": "identity_unavailable", "message": "", "hint": ""}}
    return [*found, Outcome(long, Reply(503, error, 123456.0), 0, 0, "status 503, expected 403")]


def test_the_demo_rows_fit_with_every_word_whole() -> None:
    *demo, _long = outcomes()
    rows = [demo_table.row_of(o, WHO) for o in demo]
    text = demo_table.render(rows)
    assert max(len(line) for line in text.splitlines()) <= demo_table.WIDTH
    words = text.split()
    for row in rows:
        for cell in row.cells():
            assert all(word in words for word in cell.split()), cell
    assert text.splitlines()[0].split() == [
        "identity",
        "call",
        "expected",
        "got",
        "tok",
        "sts",
        "ms",
    ]


def test_a_row_with_words_wider_than_any_column_still_fits() -> None:
    rows = [demo_table.row_of(o, WHO) for o in outcomes()]
    text = demo_table.render(rows)
    assert max(len(line) for line in text.splitlines()) <= demo_table.WIDTH
    assert "FAIL" in text.split() and "123456" in text.split()
    marks = [line.split()[0] for line in text.splitlines()[2:] if line[:2] in ("ok", "FA")]
    assert marks == [row.mark for row in rows]  # one first line per row, in order


def test_a_missed_outcome_shows_what_came_back_and_a_met_one_is_not_repeated() -> None:
    *met, missed = outcomes()
    assert demo_table.row_of(missed, WHO).mark == "FAIL"
    assert demo_table.row_of(missed, WHO).got == "503 identity_unavailable"
    refused = next(o for o in met if o.case.status == 502)
    body = {"error": {"code": refused.case.code, "message": refused.case.cause, "hint": ""}}
    replied = Outcome(refused.case, Reply(502, body, 1.0), 2, 1, None)
    assert demo_table.row_of(replied, WHO).got == "as expected"


def test_the_legend_explains_each_column_and_fits() -> None:
    legend = demo_table.legend()
    assert max(len(line) for line in legend.splitlines()) <= demo_table.WIDTH
    first, *lines = legend.splitlines()
    assert first == "Columns:"
    explained = [line.split("  ")[1] for line in lines if line[:3].strip() != ""]
    assert explained == ["identity", "call", "expected / got", "tok", "sts", "ms"]


def test_fit_wraps_long_lines_under_their_indent() -> None:
    text = "  role " + "word " * 40 + "\n\nshort"
    fitted = demo_table.fit(text).splitlines()
    assert all(len(line) <= demo_table.WIDTH for line in fitted)
    assert fitted[1].startswith("      word") and fitted[-2:] == ["", "short"]
