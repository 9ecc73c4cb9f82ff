"""api/pagination.py: one page of size + 1 rows fetched, its cursor, and the page size every list shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from api.pagination import decode_cursor, decode_time_cursor, page_of, page_size, time_key

T = datetime(2026, 11, 28, 8, tzinfo=UTC)
ID = "0b8f6c1e-4f0e-4a7e-9a53-0c2b1f1f7d10"


@dataclass
class Limits:
    api_page_default: int = 100
    api_page_max: int = 1000


def test_the_page_size_is_the_limit_else_the_default_never_above_the_maximum() -> None:
    assert page_size(None, Limits()) == 100 and page_size(7, Limits()) == 7 and page_size(5000, Limits()) == 1000


def test_a_page_keeps_size_rows_and_names_the_last_kept_when_there_are_more() -> None:
    page = page_of([{"id": i} for i in range(4)], 3, lambda r: [r["id"]], lambda r: r["id"] * 10)
    assert page.items == [0, 10, 20] and page.next_cursor is not None and decode_cursor(page.next_cursor, 1) == [2]


def test_the_last_page_has_no_cursor_but_sets_it() -> None:
    page = page_of([1, 2], 3, lambda r: [r])
    assert page.items == [1, 2] and page.next_cursor is None and "next_cursor" in page.model_fields_set


def test_a_time_key_reads_back_as_a_time_cursor() -> None:
    page = page_of([(T, ID), (T, ID)], 1, lambda r: time_key(*r))
    assert page.next_cursor is not None and decode_time_cursor(page.next_cursor) == (T, ID)
