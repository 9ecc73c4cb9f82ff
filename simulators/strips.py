"""What a strip reader reads for an intended verdict (pure, seeded by the caller's ``random.Random``).

The one place the simulators draw a verdict at configured rates and the
C/T line intensities (colloidal gold, ratio rule of DOMAIN.md §1) or the
inhibition percent (enzyme inhibition) that a server judging with the same
thresholds turns into that verdict.  :mod:`simulators.fleet` and
:mod:`simulators.faults` both use it.
"""

from __future__ import annotations

import random

from domain.judging import Thresholds
from schemas.reading import Verdict

NEGATIVE, POSITIVE, SUSPICIOUS, INVALID = (v.value for v in (Verdict.NEGATIVE, Verdict.POSITIVE,
                                                            Verdict.SUSPICIOUS, Verdict.INVALID))


def draw_verdict(rng: random.Random, positive: float, suspicious: float, invalid: float) -> str:
    """One verdict: positive, suspicious and invalid at their rates, negative otherwise (one draw)."""
    x = rng.random()
    for verdict, rate in ((POSITIVE, positive), (SUSPICIOUS, suspicious), (INVALID, invalid)):
        if x < rate:
            return verdict
        x -= rate
    return NEGATIVE


def lines(rng: random.Random, verdict: str, t: Thresholds) -> dict[str, float]:
    """C and T intensities well inside ``verdict``'s band of the ratio rule (rounding cannot cross it)."""
    if verdict == INVALID:
        return {"c_line": round(rng.uniform(0.0, 0.9 * t.c_min), 1),
                "t_line": round(rng.uniform(0.0, 1500.0), 1)}
    c = rng.uniform(max(8 * t.c_min, 400.0), max(25 * t.c_min, 2500.0))
    margin = min(0.02, (t.r_neg - t.r_pos) / 4)
    if verdict == POSITIVE:
        ratio = rng.uniform(0.0, 0.95 * t.r_pos) if rng.random() < 0.9 else 0.0
    elif verdict == SUSPICIOUS:
        ratio = rng.uniform(t.r_pos + margin, t.r_neg - margin)
    else:
        ratio = rng.uniform(t.r_neg + 0.02, t.r_neg + 0.65)
    return {"c_line": round(c, 1), "t_line": round(c * ratio, 1)}


def inhibition(rng: random.Random, verdict: str, t: Thresholds) -> float:
    """An inhibition percent judged ``verdict`` (positive, else negative: the enzyme screen has no other)."""
    if verdict == POSITIVE:
        return round(rng.uniform(t.inhibition_fail_pct + 2, 98.0), 1)
    below = min(t.inhibition_fail_pct, t.inhibition_suspicious_pct or 100.0)
    return round(rng.uniform(0.0, max(0.0, below - 10)), 1)
