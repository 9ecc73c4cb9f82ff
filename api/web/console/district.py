"""The regulator's district: figures by group over a range, charts, open and overdue failures, anomalies."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import ClockDep, Db
from api.web.console.deps import RegulatorSession
from api.web.console.labels import kind_labels, state_labels, with_summaries
from api.web.console.ranges import day_range, instants, parse_month
from api.web.templating import language_of, render, translate
from storage import console as console_q
from storage import failures as failure_q

router = APIRouter(prefix="/district")
#: Kinds shown as anomalies: readers and strip lots going bad, silent readers, misconfigured readers.
ANOMALY_KINDS = ["invalid_rate_device", "invalid_rate_strip_lot", "silent_device", "verdict_mismatch",
                 "cutoff_mismatch"]
LIST_LIMIT = 100
#: The group the bars are drawn by.
BAR_GROUP = "town"


def groups() -> list[str]:
    return list(console_q.GROUP_COLUMNS)


@router.get("")
def district(
    request: Request, session: RegulatorSession, db: Db, clock: ClockDep,
    since: Annotated[str | None, Query(max_length=10)] = None,
    until: Annotated[str | None, Query(max_length=10)] = None,
    group: Annotated[str, Query(max_length=20)] = BAR_GROUP,
) -> Response:
    now = clock()
    first, last = day_range(since, until, now)
    start, end = instants(first, last)
    group = group if group in console_q.GROUP_COLUMNS else BAR_GROUP
    rows = console_q.range_totals(db, console_q.RangeQuery(group, start, end))
    bars = rows if group == BAR_GROUP else console_q.range_totals(db, console_q.RangeQuery(BAR_GROUP, start, end))
    names = console_q.group_names(db, group, [r["grp"] for r in rows])
    bar_names = names if group == BAR_GROUP else console_q.group_names(db, BAR_GROUP, [r["grp"] for r in bars])
    trend = console_q.daily_trend(db, start, end, None)
    open_rows = failure_q.list_failures(db, failure_q.FailureFilter(open_only=True, kinds=["positive", "suspicious",
                                                                                          "overdue"]),
                                        LIST_LIMIT, None)
    open_rows.sort(key=lambda r: (r["due_at"] is None, r["due_at"] or r["raised_at"]))
    anomalies = failure_q.list_failures(db, failure_q.FailureFilter(open_only=True, kinds=ANOMALY_KINDS),
                                        LIST_LIMIT, None)
    lang = language_of(request)
    with_summaries(db, [*open_rows, *anomalies], lang)
    chart = {
        "trend": {"days": [d["day"].isoformat() for d in trend], "tests": [d["tests"] for d in trend],
                  "pass_rate": [_rate(d) for d in trend],
                  "names": {"tests": translate(lang, "stats.tests"), "pass_rate": translate(lang, "stats.pass_rate")}},
        "bars": {"groups": [bar_names.get(r["grp"], r["grp"] or "—") for r in bars],
                 "tests": [r["tests"] for r in bars],
                 "pass_rate": [round(r["pass_rate"] * 100, 2) if r["pass_rate"] is not None else None for r in bars],
                 "closure_rate": [round(r["closure_rate"] * 100, 2) if r["closure_rate"] is not None else None
                                  for r in bars],
                 "names": {"pass_rate": translate(lang, "stats.pass_rate"),
                           "closure_rate": translate(lang, "stats.closure_rate")}},
    }
    context: dict[str, Any] = {
        "section": "district", "now": now, "since": first.isoformat(), "until": last.isoformat(), "group": group,
        "groups": groups(), "rows": rows, "names": names, "total": _total(rows), "chart": chart, "bar_group": BAR_GROUP,
        "open_rows": open_rows, "anomalies": anomalies, "kind_labels": kind_labels(lang),
        "state_labels": state_labels(lang), "month": first.strftime("%Y-%m"),
    }
    return render(request, "console/templates/district.html", context)


def _rate(day: dict[str, Any]) -> float | None:
    valid = day["tests"] - day["invalid"]
    return round(day["negative"] / valid * 100, 2) if valid else None


def _total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from api.web.console.report import total

    return total(rows, "")


@router.get("/report")
def month_report(
    request: Request, session: RegulatorSession, db: Db, clock: ClockDep,
    month: Annotated[str | None, Query(max_length=7)] = None,
    format: Annotated[str, Query(pattern="^(csv|xlsx)$")] = "xlsx",
) -> Response:
    """The month's figures by market, analyte and commodity (and town once the registry has towns)."""
    from api.web.console.report import to_csv, to_xlsx

    first, last = parse_month(month, clock())
    start, end = instants(first, last)
    lang = language_of(request)
    wanted = [g for g in (BAR_GROUP, "market", "analyte", "commodity") if g in console_q.GROUP_COLUMNS]
    sheets = []
    for g in dict.fromkeys(wanted):
        rows = console_q.range_totals(db, console_q.RangeQuery(g, start, end))
        names = console_q.group_names(db, g, [r["grp"] for r in rows])
        sheets.append((g, translate(lang, f"group.{g}"), [{**r, "name": names.get(r["grp"])} for r in rows]))
    label = first.strftime("%Y-%m")
    title = translate(lang, "report.title", month=label)
    if format == "csv":
        body, media = to_csv(title, sheets, lang), "text/csv; charset=utf-8"
    else:
        body, media = to_xlsx(title, sheets, lang), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    filename = f"rapidtrace-report-{label}.{format}"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
