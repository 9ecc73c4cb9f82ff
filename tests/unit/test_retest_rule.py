"""The on-site retest rule (domain.workflow.retest_target): same sample, after the first, server verdict decides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.workflow import RetestRefused, SampleFacts, State, retest_target

T = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
FIRST = SampleFacts("r1", T, "m1", "chlorpyrifos", "韭菜", "S-1", "suspicious")
W = timedelta(hours=2)


def retest(**changes: Any) -> SampleFacts:
    base = {"reading_id": "r2", "measured_at": T + timedelta(minutes=10), "market_id": "m1",
            "analyte": "chlorpyrifos", "commodity": "韭菜", "sample_id": "S-1", "server_result": "negative"}
    return SampleFacts(**{**base, **changes})


CASES: list[tuple[str, SampleFacts | None, State | str]] = [
    ("negative releases", retest(), State.RELEASED),
    ("positive suspends", retest(server_result="positive"), State.SALE_SUSPENDED),
    ("suspicious refused", retest(server_result="suspicious"), "suspicious"),
    ("invalid refused", retest(server_result="invalid"), "invalid"),
    ("not judged yet", retest(server_result=None), "not_judged"),
    ("no such reading", None, "unknown"),
    ("the screen itself", retest(reading_id="r1"), "same_reading"),
    ("before the screen", retest(measured_at=T - timedelta(minutes=1)), "not_after"),
    ("at the same time", retest(measured_at=T), "not_after"),
    ("another analyte", retest(analyte="carbofuran"), "other_analyte"),
    ("same sample id elsewhere, late", retest(market_id="m2", measured_at=T + timedelta(hours=5)), State.RELEASED),
    ("no sample id, same goods in the window", retest(sample_id=None), State.RELEASED),
    ("no sample id, same goods past the window", retest(sample_id=None, measured_at=T + W + timedelta(seconds=1)),
     "other_sample"),
    ("no sample id, another market", retest(sample_id=None, market_id="m2"), "other_sample"),
    ("no sample id, another commodity", retest(sample_id="S-9", commodity="芹菜"), "other_sample"),
]


@pytest.mark.parametrize(("case", "second", "expected"), CASES, ids=[c[0] for c in CASES])
def test_retest_target(case: str, second: SampleFacts | None, expected: State | str) -> None:
    if isinstance(expected, State):
        assert retest_target(FIRST, second, W) is expected
    else:
        with pytest.raises(RetestRefused) as refused:
            retest_target(FIRST, second, W)
        assert refused.value.status == 422 and refused.value.details["reason"] == expected
        assert refused.value.message
