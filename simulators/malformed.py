"""Malformed MQTT input, one case per class, each with the dead-letter code the bridge must give it.

Codes (the bridge's reason codes): ``not_utf8``, ``not_json``, ``too_large``,
``invalid_reading`` (pydantic validation failed; ``fields`` names the error
locations the reason must list), ``bad_topic``, ``id_mismatch``.

Each case fails exactly one of the checks (topic, size, UTF-8, JSON, schema,
topic/payload ids) and passes all the others, so the code it must get does
not depend on the order in which the bridge runs them.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulators.fleet import TOPIC_TEMPLATE

DEFAULT_FILTER = "rt/v1/markets/+/stations/+/devices/+/readings"
MARKET, STATION, DEVICE = "mkt-01", "m01-st01", "rd-010101"
GOOD_TOPIC = TOPIC_TEMPLATE.format(market_id=MARKET, station_id=STATION, device_id=DEVICE)


@dataclass(frozen=True)
class MalformedCase:
    name: str
    topic: str
    payload_bytes: bytes
    expected_code: str
    # invalid_reading only: error locations (dotted) the reason must name.
    fields: tuple[str, ...] = ()
    # False when the topic is outside DEFAULT_FILTER: only a bridge subscribed wider (rt/v1/#) sees it.
    subscribed: bool = True


def case_reading_id(name: str) -> str:
    """A distinct, stable reading_id per case, so dead letters can be told apart."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"rapidtrace:malformed:{name}"))


def valid_payload(reading_id: str = "0b8f6c1e-4f0e-4a7e-9a53-0c2b1f1f7d10") -> dict[str, Any]:
    """A reading that passes every check, published on GOOD_TOPIC."""
    return {
        "schema": "rt.reading/1",
        "reading_id": reading_id,
        "measured_at": "2026-11-28T08:15:03+08:00",
        "sample": {"sample_id": "M01-ST01-20261128-0031", "commodity": "韭菜",
                   "commodity_category": "vegetable", "vendor_id": "mkt-01-stall-112",
                   "certificate_no": "HGZ-320412-2026-000913", "lot_code": "L20261127-03"},
        "assay": {"analyte": "chlorpyrifos", "method": "colloidal_gold", "method_standard": "KJ 201710",
                  "strip_lot": "CG2611-0101", "cutoff_ratio": 0.80, "incubation_s": 300,
                  "temperature_c": 24.5},
        "signal": {"c_line": 1532.0, "t_line": 402.0},
        "device_result": "positive",
        "operator_id": "op-01011",
        "firmware": "2.4.1",
        "market_id": MARKET,
        "station_id": STATION,
        "device_id": DEVICE,
    }


def _encode(payload: object) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


def _edited(name: str, edit: Callable[[dict[str, Any]], None]) -> bytes:
    payload = copy.deepcopy(valid_payload(case_reading_id(name)))
    edit(payload)
    return _encode(payload)


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    def edit(payload: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = payload
        for key in parents:
            node = node[key]
        node[last] = value
    return edit


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def edit(payload: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = payload
        for key in parents:
            node = node[key]
        del node[last]
    return edit


def _enzyme_without_inhibition(payload: dict[str, Any]) -> None:
    payload["assay"]["method"] = "enzyme_inhibition"
    payload["signal"] = {}


def _invalid(name: str, edit: Callable[[dict[str, Any]], None], *fields: str) -> MalformedCase:
    return MalformedCase(name, GOOD_TOPIC, _edited(name, edit), "invalid_reading", fields)


def _raw_number(name: str, path: str, token: str, code: str = "invalid_reading") -> MalformedCase:
    """The number at ``path`` written as a raw token: NaN is not JSON at all; 1e400 is JSON but not finite."""
    marker = "__RAW_NUMBER__"
    raw = _edited(name, _set(path, marker)).replace(f'"{marker}"'.encode(), token.encode())
    return MalformedCase(name, GOOD_TOPIC, raw, code, (path,) if code == "invalid_reading" else ())


def _mismatch(name: str, field: str, value: str) -> MalformedCase:
    return MalformedCase(name, GOOD_TOPIC, _edited(name, _set(field, value)), "id_mismatch")


def _topic(market: str = MARKET, station: str = STATION, device: str = DEVICE) -> str:
    return TOPIC_TEMPLATE.format(market_id=market, station_id=station, device_id=device)


def _bad_topic(name: str, topic: str, subscribed: bool = True) -> MalformedCase:
    payload = _encode(valid_payload(case_reading_id(name)))
    return MalformedCase(name, topic, payload, "bad_topic", subscribed=subscribed)


def _undecodable() -> list[MalformedCase]:
    gbk = _encode(valid_payload(case_reading_id("not_utf8_gbk"))).decode().encode("gbk")
    big = valid_payload(case_reading_id("too_large"))
    big["note"] = "x" * (16 * 1024)
    truncated = _encode(valid_payload(case_reading_id("not_json_truncated")))[:-7]
    return [
        MalformedCase("not_utf8_gbk", GOOD_TOPIC, gbk, "not_utf8"),
        MalformedCase("not_utf8_binary", GOOD_TOPIC, b"\xff\xfe\x00\x01\x80binary", "not_utf8"),
        MalformedCase("too_large", GOOD_TOPIC, _encode(big), "too_large"),
        MalformedCase("not_json_truncated", GOOD_TOPIC, truncated, "not_json"),
        MalformedCase("not_json_text", GOOD_TOPIC, b"reading ok 1532/402", "not_json"),
        MalformedCase("not_json_empty", GOOD_TOPIC, b"", "not_json"),
    ]


def _schema_failures() -> list[MalformedCase]:
    return [
        MalformedCase("json_array", GOOD_TOPIC, b"[1532.0, 402.0]", "invalid_reading"),
        _invalid("wrong_schema", _set("schema", "rt.reading/2"), "schema"),
        _invalid("missing_reading_id", _drop("reading_id"), "reading_id"),
        _invalid("missing_commodity", _drop("sample.commodity"), "sample.commodity"),
        _invalid("missing_strip_lot", _drop("assay.strip_lot"), "assay.strip_lot"),
        _invalid("missing_t_line", _drop("signal.t_line")),
        _invalid("missing_inhibition_pct", _enzyme_without_inhibition),
        _invalid("bad_reading_id", _set("reading_id", "not-a-uuid"), "reading_id"),
        _invalid("time_without_offset", _set("measured_at", "2026-11-28T08:15:03"), "measured_at"),
        _invalid("time_date_only", _set("measured_at", "2026-11-28"), "measured_at"),
        _invalid("time_epoch_number", _set("measured_at", 1795824903), "measured_at"),
        _raw_number("nan_intensity", "signal.c_line", "NaN", "not_json"),
        _raw_number("infinite_intensity", "signal.t_line", "1e400"),
        _invalid("negative_intensity", _set("signal.t_line", -5.0), "signal.t_line"),
        _invalid("boolean_intensity", _set("signal.c_line", True), "signal.c_line"),
        _invalid("inhibition_over_100", _set("signal.inhibition_pct", 120.0), "signal.inhibition_pct"),
        _invalid("bad_device_result", _set("device_result", "pass"), "device_result"),
        _invalid("bad_method", _set("assay.method", "elisa"), "assay.method"),
        _invalid("bad_category", _set("sample.commodity_category", "seafood"), "sample.commodity_category"),
        _invalid("bad_vendor_id", _set("sample.vendor_id", "stall 112"), "sample.vendor_id"),
        _invalid("bad_strip_lot", _set("assay.strip_lot", "CG/2611"), "assay.strip_lot"),
    ]


def _topic_failures() -> list[MalformedCase]:
    return [
        _bad_topic("topic_id_with_space", _topic(market="mkt 01")),
        _bad_topic("topic_id_too_long", _topic(device="r" * 65)),
        _bad_topic("topic_id_non_ascii", _topic(station="站点01")),
        _bad_topic("topic_empty_level", _topic(station="")),
        _bad_topic("topic_missing_level", f"rt/v1/markets/{MARKET}/devices/{DEVICE}/readings", False),
        _bad_topic("topic_extra_level", GOOD_TOPIC + "/extra", False),
        _bad_topic("topic_wrong_version", GOOD_TOPIC.replace("rt/v1/", "rt/v2/"), False),
        _mismatch("device_id_mismatch", "device_id", "rd-999999"),
        _mismatch("station_id_mismatch", "station_id", "m09-st09"),
        _mismatch("market_id_mismatch", "market_id", "mkt-09"),
    ]


MALFORMED_CASES: list[MalformedCase] = [*_undecodable(), *_schema_failures(), *_topic_failures()]
CODES = ("not_utf8", "not_json", "too_large", "invalid_reading", "bad_topic", "id_mismatch")
