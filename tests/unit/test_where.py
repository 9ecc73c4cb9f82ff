"""storage/where.py: the clauses every list query builds, values always as parameters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from storage.where import Where, keyset

T = datetime(2026, 11, 28, tzinfo=UTC)


def test_a_keyset_on_one_column_and_on_a_row() -> None:
    assert keyset("id", 7, descending=True) == ("id < %s", [7])
    assert keyset(("analyte", "strip_lot"), ("a", "L1")) == ("(analyte, strip_lot) > (%s, %s)", ["a", "L1"])
    assert keyset(("raised_at", "failure_id"), (T, "f"), descending=True, placeholders=("%s", "%s::uuid")) == (
        "(raised_at, failure_id) < (%s, %s::uuid)", [T, "f"])


def test_a_keyset_refuses_a_position_of_another_length() -> None:
    with pytest.raises(ValueError):
        keyset(("a", "b"), (1,))


def test_where_leaves_out_what_is_not_given_and_keeps_parameter_order() -> None:
    assert Where().equal({"a": None}).after("id", None).sql() == ""
    where = Where().markets(["m1"]).equal({"station_id": "s1", "device_id": None}).between("t", T, None)
    where.after(("t", "id"), (T, 3), descending=True)
    assert where.sql() == "WHERE market_id = ANY(%s) AND station_id = %s AND t >= %s AND (t, id) < (%s, %s)"
    assert where.params == [["m1"], "s1", T, T, 3]
