"""The load keywords' assertions: what a person reads when a load run did not hold."""

from __future__ import annotations

from typing import Any

import pytest

from qa.robot.load import LoadKeywords, describe, failed_criteria


def summary(**changes: Any) -> dict[str, Any]:
    base = {
        "profile": "smoke", "environment": "lab", "verdict": "pass", "bottleneck": "none",
        "breaking_point_cps": None,
        "calls": {"attempted": 400, "answered": 398, "failed": 2},
        "criteria": [{"name": "failed_pct_max", "limit": 1.0, "value": 0.5, "pass": True,
                      "where": "failed calls 0.5 % <= 1 % over t=3-22 s"}],
        "reasons": [],
        "cdr": {"checked": 398, "missing": 0, "loss_pct": 0.0, "billable_seconds_lost": 0.0},
    }
    return base | changes


KW = LoadKeywords(ctx=None)


def test_a_passing_run_passes() -> None:
    KW.load_criteria_should_pass(summary())
    KW.cdr_loss_should_be_at_most(summary(), 0)
    KW.load_verdict_should_be(summary(), "PASS", "none")


def test_a_failing_run_names_each_broken_criterion_with_its_numbers() -> None:
    broken = summary(verdict="fail", bottleneck="platform", criteria=[
        {"name": "setup_p95_ms_max", "limit": 500.0, "value": 1240.0, "pass": False,
         "where": "setup p95 1,240 ms > 500 ms at 450 calls/s (t=120-130 s)"},
        {"name": "cdr_loss_pct_max", "limit": 0.0, "value": None, "pass": False,
         "where": "not judged: the environment has no CDR source"},
        {"name": "asr_min", "limit": 0.99, "value": 1.0, "pass": True, "where": "ASR 1 >= 0.99"}])
    with pytest.raises(AssertionError) as info:
        KW.load_criteria_should_pass(broken)
    text = str(info.value)
    assert "fail" in text and "bottleneck platform" in text
    assert "setup_p95_ms_max 1240 (limit 500): setup p95 1,240 ms > 500 ms at 450 calls/s" in text
    assert "cdr_loss_pct_max not measured (limit 0)" in text and "asr_min" not in text
    assert failed_criteria(broken)[0].startswith("setup_p95_ms_max")


def test_verdict_bottleneck_and_breaking_point_checks_fail_with_the_run_in_words() -> None:
    stress = summary(verdict="fail", bottleneck="generator", breaking_point_cps=60.0)
    with pytest.raises(AssertionError, match="expected fail with bottleneck platform, got .*bottleneck generator"):
        KW.load_verdict_should_be(stress, "fail", "platform")
    KW.breaking_point_should_be_at_least(stress, 60)
    with pytest.raises(AssertionError, match="breaking point 60.0 calls/s < 80"):
        KW.breaking_point_should_be_at_least(stress, 80)
    assert "breaking point 60 calls/s" in describe(stress)


@pytest.mark.parametrize("cdr, message", [
    ({"checked": 400, "missing": 40, "loss_pct": 10.0, "billable_seconds_lost": 80.0},
     "CDR loss 10.0 % > 0 %: 40 of 400 calls have no CDR, 80.0 billable seconds lost"),
    ({"checked": 0, "skipped": "the environment has no CDR source"},
     "no CDR was checked (the environment has no CDR source)"),
    (None, "no CDR was checked (no CDR source)"),
])
def test_cdr_loss_is_never_passed_unchecked(cdr: Any, message: str) -> None:
    with pytest.raises(AssertionError) as info:
        KW.cdr_loss_should_be_at_most(summary(cdr=cdr), 0)
    assert str(info.value) == message
