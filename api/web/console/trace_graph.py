"""Lay a traced chain out for an ECharts graph: upstream to the left, downstream to the right."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

COLUMN_GAP = 240
ROW_GAP = 90


def _qty(q: dict[str, Any] | None) -> str:
    if not q or q.get("value") is None:
        return ""
    value = q["value"]
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{text} {q.get('unit') or ''}".strip()


def chart_graph(nodes: list[dict[str, Any]], edges: list[dict[str, Any]], focus: str | None) -> dict[str, Any]:
    """ECharts ``series.data`` and ``series.links`` for the API's trace nodes and edges (positions fixed)."""
    columns: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for n in nodes:
        hops = int(n.get("hops") or 0)
        side = n.get("side")
        columns[-hops if side == "up" else hops].append(n)
    data = []
    for column, members in sorted(columns.items()):
        members.sort(key=lambda n: n["certificate_no"])
        top = -(len(members) - 1) * ROW_GAP / 2
        for i, n in enumerate(members):
            holder = (n.get("holder") or {}).get("id") or ""
            location = n.get("location") or {}
            where = "/".join(x for x in (location.get("market_id"), location.get("stall_id")) if x)
            data.append({
                "name": n["certificate_no"],
                "x": column * COLUMN_GAP, "y": top + i * ROW_GAP,
                "label": "\n".join(x for x in (n["certificate_no"], holder, _qty(n.get("quantity")), where) if x),
                "category": 0 if n["certificate_no"] == focus else (1 if n.get("side") == "up" else 2),
                "kind": n.get("kind"),
            })
    links = [{"source": e["from"], "target": e["to"], "label": _qty(e.get("quantity"))} for e in edges]
    return {"nodes": data, "links": links}
