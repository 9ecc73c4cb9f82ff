"""What the public pages show, in Chinese: pure functions from stored values to display values.

Nothing here escapes HTML: the templates do (Jinja autoescape), and the board's script writes
text nodes only.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from domain import analytes
from storage.board import BoardCounts, BoardFailure, BoardTest

VERDICT_ZH = {
    "negative": ("合格", "ok"),
    "positive": ("不合格", "bad"),
    "suspicious": ("可疑，待复检", "warn"),
    "invalid": ("无效，重新检测", "muted"),
}
PENDING = ("判定中", "muted")

STATE_ZH = {
    "screen_positive": "初筛阳性，现场复检中",
    "sale_suspended": "已暂停销售",
    "lab_retest": "已送实验室复检",
    "destroyed": "已监督销毁",
    "released": "复检合格，已恢复销售",
    "confirmed": "复检确认不合格",
    "traced": "已追溯来源",
    "posted": "已公示",
    "reported": "已上报监管部门",
    "closed": "已办结",
}

KIND_ZH = {"positive": "阳性", "suspicious": "可疑"}

BASIS_ZH = {
    "quality_control": "质量安全控制符合要求",
    "self_test": "自行检测合格",
    "entrusted_test": "委托检测合格",
}

CERT_KIND_ZH = {"origin": "产地开具", "handoff": "转手", "split": "分装", "merge": "合并"}

# a vendor id is shown only as the stall number it carries ("stall-112", "M07-stall-112", "tw_08")
_STALL_RE = re.compile(r"(?:^|[-_.])(?:stall|tw|stand)[-_.]?([A-Za-z0-9]{1,8})$", re.IGNORECASE)


def stall_number(vendor_id: str | None) -> str:
    """The stall number in a vendor id, or an em dash: the board shows no vendor names."""
    if not vendor_id:
        return "—"
    match = _STALL_RE.search(vendor_id)
    return (match[1].lstrip("0") or "0") if match else "—"


def analyte_zh(code: str | None) -> str:
    if not code:
        return "—"
    found = analytes.get(code)
    return found.name_zh if found else code


def verdict_zh(result: str | None) -> tuple[str, str]:
    """(label, css class) of a server verdict; not judged yet is 判定中."""
    return VERDICT_ZH.get(result or "", PENDING)


def pass_rate(c: BoardCounts) -> float | None:
    """合格率: negative over valid (non-invalid) tests, as everywhere in the API."""
    valid = c.tests - c.invalid
    return c.negative / valid if valid else None


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def local_hm(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%H:%M")


def test_row(t: BoardTest, zone: ZoneInfo) -> dict[str, Any]:
    label, css = verdict_zh(t.server_result)
    return {"id": t.reading_id, "time": local_hm(t.measured_at, zone), "commodity": t.commodity,
            "analyte": analyte_zh(t.analyte), "result": label, "result_class": css,
            "stall": stall_number(t.vendor_id)}


def failure_row(f: BoardFailure, zone: ZoneInfo) -> dict[str, Any]:
    at = f.measured_at or f.raised_at
    return {"id": f.failure_id, "time": at.astimezone(zone).strftime("%m-%d %H:%M"),
            "kind": KIND_ZH.get(f.kind, f.kind), "commodity": f.commodity or "—", "analyte": analyte_zh(f.analyte),
            "stall": stall_number(f.vendor_id), "state": STATE_ZH.get(f.state, f.state), "closed": f.state == "closed"}
