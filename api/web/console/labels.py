"""Localized labels of workflow values (kinds, states) from the catalogues; failures' summaries worded for a page."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from api.web.failure_text import failure_text
from api.web.templating import analyte_name, translate
from domain import workflow
from storage import failures as failure_q
from storage.db import Connection


def kind_labels(lang: str) -> dict[str, str]:
    return {k.value: translate(lang, f"kind.{k.value}") for k in workflow.Kind}


def state_labels(lang: str) -> dict[str, str]:
    return {s.value: translate(lang, f"state.{s.value}") for s in workflow.State}


def with_summaries(conn: Connection, rows: Iterable[dict[str, Any]], lang: str) -> None:
    """Add ``summary_text`` (the failure's summary in ``lang``, :func:`failure_text`) and ``analyte_label`` to each
    row in place, reading the ``details`` and parent kinds the listed columns lack in one query."""
    rows = list(rows)
    facts = failure_q.display_facts(conn, [str(r["failure_id"]) for r in rows])
    for row in rows:
        found = facts.get(str(row["failure_id"]), {})
        row["summary_text"] = failure_text(lang, {**found, **row})
        row["analyte_label"] = analyte_name(lang, row.get("analyte"))
