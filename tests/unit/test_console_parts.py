"""Pure parts of the console: labels for every workflow value, action forms, the chain layout, the report, ranges."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest
from openpyxl import load_workbook

from api.errors import ApiError
from api.web.console.failure import action_forms
from api.web.console.ranges import day_range, instants, parse_month
from api.web.console.report import to_csv, to_xlsx
from api.web.console.trace_graph import chart_graph
from api.web.templating import catalogue
from domain import workflow
from domain.registry_rules import MarketKind


def test_every_workflow_value_and_market_kind_has_a_label_in_both_languages() -> None:
    keys = {f"kind.{k.value}" for k in workflow.Kind} | {f"state.{s.value}" for s in workflow.State}
    keys |= {f"action.{tr.action}" for trs in workflow.TRANSITIONS.values() for tr in trs} | {"action.raised"}
    keys |= {f"evidence.{e}" for e in workflow.EVIDENCE_FIELDS} | {f"public.kind.{k.value}" for k in MarketKind}
    for lang in ("zh-CN", "en"):
        missing = sorted(keys - set(catalogue(lang)))
        assert not missing, (lang, missing)


def test_action_forms_ask_for_the_evidence_the_workflow_needs() -> None:
    forms = {f["action"]: f for f in action_forms("positive", ["object", "lab_negative", "destroy"])}
    assert forms["object"]["note_required"] and forms["object"]["fields"] == []
    assert [f["name"] for f in forms["lab_negative"]["fields"]] == ["lab_report_no"]
    assert {f["name"] for f in forms["destroy"]["fields"]} == {"photo_ref"} and forms["destroy"]["note_required"]


def test_chain_graph_puts_upstream_left_and_downstream_right() -> None:
    def node(no: str, hops: int, side: str) -> dict[str, object]:
        return {"certificate_no": no, "hops": hops, "side": side, "holder": {"id": "h"},
                "quantity": {"value": 1.5, "unit": "kg"}, "location": {"market_id": None, "stall_id": None}}

    graph = chart_graph([node("S", 0, "self"), node("U", 1, "up"), node("D1", 1, "down"), node("D2", 1, "down")],
                        [{"from": "U", "to": "S", "quantity": {"value": 3, "unit": "kg"}}], "S")
    x = {n["name"]: n["x"] for n in graph["nodes"]}
    assert x["U"] < x["S"] < x["D1"] == x["D2"]
    assert {n["name"]: n["category"] for n in graph["nodes"]} == {"S": 0, "U": 1, "D1": 2, "D2": 2}
    assert graph["links"] == [{"source": "U", "target": "S", "label": "3 kg"}]
    assert "1.5 kg" in next(n["label"] for n in graph["nodes"] if n["name"] == "S")


ROWS = [{"grp": "=cmd|' /C calc'!A0", "name": None, "tests": 10, "negative": 8, "positive": 1, "suspicious": 0,
         "invalid": 1, "failures": 1, "closed": 1, "pass_rate": 8 / 9, "closure_rate": 1.0, "median_close_s": 7200.0}]


def test_report_csv_has_totals_and_defuses_formulas() -> None:
    text = to_csv("t", [("market", "市场", ROWS)], "zh-CN").decode("utf-8")
    assert text.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert table[4][0].startswith("'=") and table[4][2] == "10" and table[4][-1] == "2.0"
    assert table[5][0] == "合计" and table[5][2] == "10"


def test_report_xlsx_opens_with_one_sheet_per_group() -> None:
    book = load_workbook(io.BytesIO(to_xlsx("t", [("market", "市场", ROWS), ("analyte", "检测项目", [])], "en")))
    assert book.sheetnames == ["市场", "检测项目"]
    assert [c.value for c in book["市场"][2]][:3] == ["Market", "Name", "Tests"]


def test_ranges_are_local_days_and_months() -> None:
    now = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # 01:00 on 2 December in Shanghai
    first, last = day_range(None, None, now)
    assert (first, last) == (date(2026, 11, 26), date(2026, 12, 2))
    start, end = instants(first, last)
    assert start == datetime(2026, 11, 25, 16, tzinfo=UTC) and end == datetime(2026, 12, 2, 16, tzinfo=UTC)
    assert parse_month(None, now) == (date(2026, 11, 1), date(2026, 11, 30))
    assert parse_month("2024-02", now) == (date(2024, 2, 1), date(2024, 2, 29))
    for bad in (("2026-12-05", "2026-12-01"), ("x", None)):
        with pytest.raises(ApiError):
            day_range(*bad, now)
    with pytest.raises(ApiError):
        parse_month("2026-13", now)
