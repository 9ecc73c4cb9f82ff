"""The month report for the county office: one row per group, as CSV (UTF-8 with BOM, for Excel) or XLSX."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from api.web.templating import translate

COLUMNS = ("tests", "negative", "positive", "suspicious", "invalid", "pass_rate", "failures", "closed",
           "closure_rate", "median_hours")


def headers(lang: str, group: str) -> list[str]:
    return [translate(lang, f"group.{group}"), translate(lang, "report.name"),
            *(translate(lang, f"report.{c}") for c in COLUMNS)]


def values(row: dict[str, Any]) -> list[Any]:
    median = row["median_close_s"]
    return [
        row["grp"] or "—", row.get("name") or "", row["tests"], row["negative"], row["positive"], row["suspicious"],
        row["invalid"],
        round(row["pass_rate"], 4) if row["pass_rate"] is not None else None, row["failures"], row["closed"],
        round(row["closure_rate"], 4) if row["closure_rate"] is not None else None,
        round(median / 3600, 2) if median is not None else None,
    ]


def total(rows: Sequence[dict[str, Any]], label: str) -> dict[str, Any]:
    keys = ("tests", "negative", "positive", "suspicious", "invalid", "failures", "closed")
    sums = {k: sum(int(r[k]) for r in rows) for k in keys}
    valid = sums["tests"] - sums["invalid"]
    return {"grp": label, **sums, "pass_rate": sums["negative"] / valid if valid else None,
            "closure_rate": sums["closed"] / sums["failures"] if sums["failures"] else None, "median_close_s": None}


def to_csv(title: str, sheets: Sequence[tuple[str, str, Sequence[dict[str, Any]]]], lang: str) -> bytes:
    """``sheets``: (group key, sheet title, rows); one block per sheet, separated by a blank line."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([title])
    for group, sheet_title, rows in sheets:
        writer.writerow([])
        writer.writerow([sheet_title])
        writer.writerow(headers(lang, group))
        for row in [*rows, total(rows, translate(lang, "report.total"))]:
            writer.writerow(["" if v is None else _safe_cell(v) for v in values(row)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _safe_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula gets a leading quote (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_xlsx(title: str, sheets: Sequence[tuple[str, str, Sequence[dict[str, Any]]]], lang: str) -> bytes:
    book = Workbook()
    first = True
    for group, sheet_title, rows in sheets:
        sheet = book.active if first else book.create_sheet()
        assert sheet is not None
        first = False
        sheet.title = sheet_title[:31]
        sheet.append([title])
        sheet["A1"].font = Font(bold=True, size=13)
        sheet.append(headers(lang, group))
        for cell in sheet[2]:
            cell.font = Font(bold=True)
        for row in [*rows, total(rows, translate(lang, "report.total"))]:
            sheet.append([_safe_cell(v) for v in values(row)])
        for letter in ("H", "K"):
            for cell in sheet[letter][2:]:
                cell.number_format = "0.00%"
        sheet.column_dimensions["A"].width = 28
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
