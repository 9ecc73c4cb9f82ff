"""Helpers for integration tests: wait for a condition, publish over real MQTT, query rows."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as mqtt

from schemas.mqtt_url import parse_mqtt_url
from storage.db import connect


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2, what: str = "") -> Any:
    """Poll until ``predicate()`` is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}; last value {last!r}")


def publish(url: str, protocol: str, messages: Iterable[tuple[str, bytes]], timeout: float = 30.0) -> int:
    """Publish each (topic, payload) at QoS 1 and wait for every PUBACK; returns the count."""
    address = parse_mqtt_url(url)
    client = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"test-pub-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311,
    )
    if address.username:
        client.username_pw_set(address.username, address.password)
    connected = threading.Event()
    client.on_connect = lambda *a: connected.set()
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        assert connected.wait(10), "test publisher could not connect"
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            assert info.is_published(), "a test message was not acknowledged by the broker"
        return len(infos)
    finally:
        client.disconnect()
        client.loop_stop()


def rows(dsn: str, query: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(query, list(params))
            return list(cur.fetchall())
    finally:
        conn.close()


def scalar(dsn: str, query: str, params: Iterable[Any] = ()) -> Any:
    found = rows(dsn, query, params)
    return found[0][0] if found else None


def reading_payload(**overrides: Any) -> dict[str, Any]:
    """A valid rt.reading/1 payload (SPEC.md example) with a fresh reading_id."""
    payload: dict[str, Any] = {
        "schema": "rt.reading/1",
        "reading_id": str(uuid.uuid4()),
        "measured_at": "2026-11-28T08:15:03+08:00",
        "sample": {"sample_id": "WJ-M07-20261128-0031", "commodity": "韭菜", "commodity_category": "vegetable",
                   "vendor_id": "stall-112", "certificate_no": "HGZ-320412-2026-000913", "lot_code": "L20261127-03"},
        "assay": {"analyte": "chlorpyrifos", "method": "colloidal_gold", "method_standard": "KJ 201710",
                  "strip_lot": "CG2611-07", "cutoff_ratio": 0.80, "incubation_s": 300, "temperature_c": 24.5},
        "signal": {"c_line": 1532.0, "t_line": 1502.0},
        "device_result": "negative",
        "operator_id": "op-07",
        "firmware": "2.4.1",
    }
    payload.update(overrides)
    return payload


def reading_topic(market: str = "m1", station: str = "s1", device: str = "d1") -> str:
    return f"rt/v1/markets/{market}/stations/{station}/devices/{device}/readings"


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()
