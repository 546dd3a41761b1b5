"""The benchmark's targets table: a verdict only from a full run. A quick run's few rounds
on a shared machine make its ratios a smoke test of the harness, so it prints no PASS or
FAIL (it printed FAIL rows and exited 0: read as a verdict either way)."""

from __future__ import annotations

from bench import report

TARGETS = [{"target": "setup wall <= 1.05 x card floor", "detail": "1.31", "ok": False},
           {"target": "status wall <= 1.5 x `python -I -c pass`", "detail": "1.10", "ok": True}]


def test_a_full_run_judges_each_target():
    lines = report.verdicts({"args": {"quick": False}, "targets": TARGETS})
    assert "FAIL" in "\n".join(lines) and "PASS" in "\n".join(lines)


def test_a_quick_run_says_it_is_a_smoke_test_and_judges_nothing():
    text = "\n".join(report.verdicts({"args": {"quick": True}, "targets": TARGETS}))
    assert "FAIL" not in text and "PASS" not in text
    assert "smoke test, not a verdict" in text and "scripts/bench" in text
    assert "1.31" in text  # the ratio is still shown, for the reader
