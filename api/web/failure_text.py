"""A failure's one-line summary in the page's language, worded from its structured fields.

The stored ``summary`` is the flagger's English sentence (the JSON API, exports and logs keep it). The
console words the same facts again from the failure's kind, ids and ``details`` through the catalogues'
``summary.*`` messages (``{name}`` placeholders), with the labels the console already uses for kinds,
states and verdicts (``kind.*``, ``state.*``, ``result.*``) and the analyte catalogue's names.

Whatever cannot be worded (a kind without a message, a required field missing or of the wrong type, a
message missing in the language) shows the stored summary instead: never an error, never a placeholder.
The only optional part is a strip's reason (the judging rule and its thresholds): a rule without a
message leaves the parenthesis out rather than the whole sentence in English.

The result is plain text: the templates escape it (Jinja autoescape), the live list writes it with
``textContent``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from api.web.templating import DISPLAY_TZ, analyte_name, catalogue

#: The thresholds a strip's reason may name (``details.thresholds``), formatted like the judge does (``:g``).
_THRESHOLD_KEYS = ("c_min", "r_pos", "r_neg", "t_pos", "t_neg", "limit", "suspicious_from", "inhibition_fail_pct",
                   "inhibition_suspicious_pct")


class _Missing(Exception):
    """A field or message the sentence needs is not there: the stored summary is shown."""


def _text(value: Any) -> str:
    if value is None or isinstance(value, bool) or value == "":
        raise _Missing
    return str(value)


def _number(value: Any, fmt: str = "g") -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Missing
    return format(float(value), fmt)


def _time(value: Any) -> str:
    """An RFC 3339 instant (as ``details`` hold them) or a datetime, in Beijing time."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise _Missing from None
    if not isinstance(value, datetime):
        raise _Missing
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(DISPLAY_TZ).strftime("%Y-%m-%d %H:%M")


class _Words:
    """The messages of one language; every lookup that finds nothing raises :class:`_Missing`."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.messages = catalogue(lang)

    def msg(self, key: str, **values: str) -> str:
        template = self.messages.get(key)
        if template is None:
            raise _Missing
        try:
            return template.format_map(values)
        except (KeyError, IndexError, ValueError):
            raise _Missing from None

    def label(self, prefix: str, value: Any) -> str:
        return self.msg(f"{prefix}.{_text(value)}")

    def analyte(self, code: Any) -> str:
        return analyte_name(self.lang, _text(code))

    def where(self, f: Mapping[str, Any]) -> str:
        return self.msg("summary.where", commodity=_text(f.get("commodity")), analyte=self.analyte(f.get("analyte")),
                        market=_text(f.get("market_id")), station=_text(f.get("station_id")))

    def occurrences(self, f: Mapping[str, Any]) -> str:
        n = f.get("occurrences")
        return self.msg("summary.occurrences", n=str(n)) if isinstance(n, int) and n > 1 else ""


def _details(f: Mapping[str, Any]) -> Mapping[str, Any]:
    details = f.get("details")
    if not isinstance(details, Mapping):
        raise _Missing
    return details


def _thresholds(details: Mapping[str, Any]) -> Mapping[str, Any]:
    found = details.get("thresholds")
    if not isinstance(found, Mapping):
        raise _Missing
    return found


def _reason(w: _Words, details: Mapping[str, Any]) -> str | None:
    """Why the server judged the strip so, from its rule and thresholds; None when there is no message for it."""
    rule, result = details.get("rule"), details.get("server_result")
    if not isinstance(rule, str) or not rule:
        return None
    thresholds = details.get("thresholds")
    values: dict[str, str] = {}
    if isinstance(thresholds, Mapping):
        for key in _THRESHOLD_KEYS:
            if isinstance(thresholds.get(key), int | float) and not isinstance(thresholds.get(key), bool):
                values[key] = _number(thresholds[key])
    if isinstance(details.get("ratio"), int | float) and not isinstance(details.get("ratio"), bool):
        values["ratio"] = _number(details["ratio"], ".4g")
    for key in (f"summary.reason.{rule}.{result}", f"summary.reason.{rule}"):
        if key in w.messages:
            try:
                return w.msg(key, **values)
            except _Missing:
                return None
    return None


def _strip(w: _Words, f: Mapping[str, Any]) -> str:
    details = _details(f)
    reason = _reason(w, details)
    kind, where = w.label("kind", f.get("kind")), w.where(f)
    text = (w.msg("summary.strip", kind=kind, where=where, reason=reason) if reason
            else w.msg("summary.strip_bare", kind=kind, where=where))
    if details.get("verdict_mismatch") is True:
        text += w.msg("summary.device_said", device_result=w.label("result", details.get("device_result")))
    return text


def _verdict_mismatch(w: _Words, f: Mapping[str, Any]) -> str:
    details = _details(f)
    return w.msg("summary.verdict_mismatch", device=_text(f.get("device_id")),
                 device_result=w.label("result", details.get("device_result")),
                 server_result=w.label("result", details.get("server_result")),
                 where=w.where(f)) + w.occurrences(f)


def _cutoff_mismatch(w: _Words, f: Mapping[str, Any]) -> str:
    details = _details(f)
    return w.msg("summary.cutoff_mismatch", device=_text(f.get("device_id")),
                 device_cutoff=_number(details.get("device_cutoff")),
                 r_pos=_number(_thresholds(details).get("r_pos")), where=w.where(f)) + w.occurrences(f)


def _rate_values(w: _Words, f: Mapping[str, Any]) -> dict[str, str]:
    details = _details(f)
    window = details.get("window")
    if not isinstance(window, Mapping):
        raise _Missing
    return {"rate": _number(details.get("window_rate"), ".1%"), "tests": _number(window.get("tests"), ".0f"),
            "baseline": w.label("summary.baseline", details.get("baseline_source")),
            "baseline_rate": _number(details.get("baseline_rate"), ".1%"), "z": _number(details.get("z"), ".1f")}


def _invalid_rate_device(w: _Words, f: Mapping[str, Any]) -> str:
    device = f.get("device_id") or f.get("subject")
    return w.msg("summary.invalid_rate_device", device=_text(device), **_rate_values(w, f))


def _invalid_rate_strip_lot(w: _Words, f: Mapping[str, Any]) -> str:
    analyte, strip_lot = f.get("analyte"), f.get("strip_lot")
    if not (analyte and strip_lot) and isinstance(f.get("subject"), str) and "/" in f["subject"]:
        analyte, strip_lot = f["subject"].split("/", 1)
    return w.msg("summary.invalid_rate_strip_lot", analyte=w.analyte(analyte), strip_lot=_text(strip_lot),
                 **_rate_values(w, f))


def _silent_device(w: _Words, f: Mapping[str, Any]) -> str:
    details = _details(f)
    device = f.get("device_id") or f.get("subject")
    return w.msg("summary.silent_device", device=_text(device),
                 hours=_number(details.get("silent_working_hours"), ".1f"), last_seen=_time(details.get("last_seen")))


def _overdue(w: _Words, f: Mapping[str, Any]) -> str:
    details = _details(f)
    parent = _text(f.get("parent_failure_id") or f.get("subject"))[:8]
    values = {"parent": parent, "state": w.label("state", details.get("state")), "due": _time(details.get("due_at"))}
    if f.get("parent_kind"):
        return w.msg("summary.overdue", parent_kind=w.label("kind", f["parent_kind"]), **values)
    return w.msg("summary.overdue_unknown", **values)


def _certificate_held(w: _Words, f: Mapping[str, Any]) -> str:
    details = _details(f)
    waits = details.get("waits_for")
    if not isinstance(waits, list) or not waits:
        raise _Missing
    held_at, raised_at = details.get("held_at"), f.get("raised_at")
    try:
        start = datetime.fromisoformat(held_at) if isinstance(held_at, str) else None
        end = datetime.fromisoformat(raised_at) if isinstance(raised_at, str) else raised_at
        hours = (end - start).total_seconds() / 3600 if isinstance(start, datetime) and isinstance(end, datetime) \
            else None
    except (TypeError, ValueError):
        hours = None
    return w.msg("summary.certificate_held", no=_text(f.get("certificate_no") or f.get("subject")),
                 hours=_number(hours, ".1f"), waits=w.msg("summary.list_sep").join(_text(n) for n in waits))


_BUILDERS: dict[str, Callable[[_Words, Mapping[str, Any]], str]] = {
    "positive": _strip,
    "suspicious": _strip,
    "invalid": _strip,
    "verdict_mismatch": _verdict_mismatch,
    "cutoff_mismatch": _cutoff_mismatch,
    "invalid_rate_device": _invalid_rate_device,
    "invalid_rate_strip_lot": _invalid_rate_strip_lot,
    "silent_device": _silent_device,
    "overdue": _overdue,
    "certificate_held": _certificate_held,
}


def reason_text(lang: str, verdict: Mapping[str, Any]) -> str:
    """Why the server judged a strip so (a verdict's ``rule``, ``server_result``, ``ratio`` and
    ``thresholds``) in ``lang``, as a strip's summary words it; the stored ``reason`` otherwise."""
    return _reason(_Words(lang), verdict) or str(verdict.get("reason") or "")


def failure_text(lang: str, f: Mapping[str, Any]) -> str:
    """The summary of failure ``f`` (a row as listed, with ``details`` and for an overdue step ``parent_kind``)
    in ``lang``; the stored summary when the sentence cannot be made."""
    stored = str(f.get("summary") or "")
    build = _BUILDERS.get(str(f.get("kind")))
    if build is None:
        return stored
    try:
        return build(_Words(lang), f) or stored
    except (_Missing, KeyError, TypeError, ValueError, AttributeError, OSError):
        return stored
