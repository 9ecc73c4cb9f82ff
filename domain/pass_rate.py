"""The pass-rate figures of one (bucket, group) row: 合格率 over valid tests, 处置率 of screen failures,
the false-positive rate of those the lab settled, the median time to closure (DOMAIN.md §3)."""

from __future__ import annotations

from typing import Any

from domain.failures import share


def shape(row: dict[str, Any]) -> dict[str, Any]:
    """The API form of one row: counts, 合格率 and 处置率."""
    valid = row["n_tests"] - row["n_invalid"]
    median = row["median_close_s"]
    return {
        "bucket_start": row["bucket_start"],
        "group": row["grp"],
        "tests": row["n_tests"],
        "valid_tests": valid,
        "negative": row["n_negative"],
        "failures_by_kind": {
            "positive": row["n_positive"],
            "suspicious": row["n_suspicious"],
            "invalid": row["n_invalid"],
            "verdict_mismatch": row["n_verdict_mismatch"],
            "cutoff_mismatch": row["n_cutoff_mismatch"],
        },
        "pass_rate": round(row["n_negative"] / valid, 6) if valid else None,
        "screen_failures": row["n_failures"],
        # outcomes of the screen failures raised in the bucket (DOMAIN.md §3): a lab-negative release
        # is a false positive, a lab positive a confirmed one
        "false_positives": row["n_false_positive"],
        "confirmed_positives": row["n_confirmed"],
        "false_positive_rate": share(row["n_false_positive"], row["n_false_positive"] + row["n_confirmed"]),
        "closed": row["n_closed"],
        "closure_rate": round(row["n_closed"] / row["n_failures"], 6) if row["n_failures"] else None,
        "median_hours_to_close": round(float(median) / 3600, 3) if median is not None else None,
    }
