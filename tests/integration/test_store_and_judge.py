"""The ``readings`` consumer (store and judge in one group and one transaction), as ``rapidtrace up`` and
docker-compose deploy it: MQTT in, rows, verdicts and failures out, each reading once."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from prometheus_client import REGISTRY

from consumers.flagger import Flagger
from consumers.runner import ConsumerLoop
from consumers.store_and_judge import StoreAndJudge
from consumers.testing import MemorySink, MemorySource, record
from ingest.route import Accepted, route
from schemas.common import utc_now
from tests.helpers import encode, publish, reading_payload, reading_topic, rows, scalar, wait_for

pytestmark = pytest.mark.integration


def test_readings_are_stored_judged_and_flagged_in_one_consumer(settings, pipeline, mqtt_broker):
    pipeline("readings", "deadletters")
    negatives = [reading_payload() for _ in range(20)]
    positive = reading_payload(signal={"c_line": 1500.0, "t_line": 300.0}, device_result="positive")
    first = reading_payload()
    conflict = {**first, "measured_at": "2026-11-28T09:00:00+08:00"}  # one reading_id, another reading
    messages = [(reading_topic(), encode(p)) for p in [*negatives, positive, first]]
    publish(mqtt_broker.url, mqtt_broker.protocol, messages)
    dsn = settings.database_url
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM verdicts") == 22, what="22 readings judged")
    publish(mqtt_broker.url, mqtt_broker.protocol, [(reading_topic(), encode(conflict))])
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM deadletters WHERE code = 'reading_conflict'") == 1,
             what="the conflicting re-send dead-lettered")
    assert scalar(dsn, "SELECT count(*) FROM readings") == 22
    assert scalar(dsn, "SELECT count(*) FROM verdicts") == 22
    assert rows(dsn, "SELECT server_result, count(*) FROM verdicts GROUP BY 1 ORDER BY 1") == [
        ("negative", 21), ("positive", 1)]
    assert rows(dsn, "SELECT kind, reading_id::text FROM failures") == [("positive", positive["reading_id"])]
    wait_for(lambda: scalar(dsn, "SELECT count(*) FROM alert_outbox WHERE sent_at IS NOT NULL") == 1,
             what="the positive's alert published")


def test_a_redelivered_batch_writes_and_raises_nothing_twice(settings):
    now = utc_now()
    payloads = [reading_payload(), reading_payload(signal={"c_line": 1500.0, "t_line": 200.0})]
    records = []
    for i, p in enumerate(payloads):
        routed = route(reading_topic(), encode(p), now)
        assert isinstance(routed, Accepted)
        records.append(record(settings.topic_readings, routed.value, offset=i, headers=routed.headers))
    for attempt in range(2):  # the second run is a consumer restarted before its offsets were committed
        stop = threading.Event()
        source = MemorySource(records, stop_when_drained=stop)
        loop = ConsumerLoop(StoreAndJudge(settings), settings, stop, source=source, sink=MemorySink())
        thread = threading.Thread(target=loop.run, daemon=True)
        thread.start()
        thread.join(30)
        assert stop.is_set(), f"run {attempt} did not drain"
    dsn = settings.database_url
    assert scalar(dsn, "SELECT count(*) FROM readings") == 2
    assert scalar(dsn, "SELECT count(*) FROM verdicts") == 2
    assert scalar(dsn, "SELECT count(*) FROM failures") == 1
    assert scalar(dsn, "SELECT count(*) FROM alert_outbox") == 1
    assert str(uuid.UUID(payloads[1]["reading_id"])) == scalar(dsn, "SELECT reading_id::text FROM failures")


class _BrokenOn(Flagger):
    """A flagger with a defect: judging one given reading raises."""

    def __init__(self, settings, reading_id: str) -> None:
        super().__init__(settings)
        self.broken = uuid.UUID(reading_id)

    def judge(self, conn, parsed):
        if any(p.facts.reading_id == self.broken for p in parsed):
            raise ValueError("a judging defect")
        return super().judge(conn, parsed)


def test_a_judging_defect_never_stops_storing(settings):
    """Judging is under a savepoint: the batch is stored, every other reading judged (its positive
    flagged), and the reading judging fails on is stored unjudged and counted, not dead-lettered."""
    now = utc_now()
    payloads = [reading_payload(), reading_payload(signal={"c_line": 1500.0, "t_line": 200.0}), reading_payload()]
    records = []
    for i, p in enumerate(payloads):
        routed = route(reading_topic(), encode(p), now)
        assert isinstance(routed, Accepted)
        records.append(record(settings.topic_readings, routed.value, offset=i, headers=routed.headers))
    before = REGISTRY.get_sample_value("rt_judging_failed_total") or 0.0
    stop = threading.Event()
    sink = MemorySink()
    handler = StoreAndJudge(settings, flagger=_BrokenOn(settings, payloads[2]["reading_id"]))
    loop = ConsumerLoop(handler, settings, stop, source=MemorySource(records, stop_when_drained=stop), sink=sink)
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    thread.join(30)
    assert stop.is_set(), "the batch was not committed"
    dsn = settings.database_url
    assert scalar(dsn, "SELECT count(*) FROM readings") == 3
    assert sorted(r[0] for r in rows(dsn, "SELECT reading_id::text FROM verdicts")) == sorted(
        p["reading_id"] for p in payloads[:2])
    assert rows(dsn, "SELECT kind, reading_id::text FROM failures") == [("positive", payloads[1]["reading_id"])]
    assert sink.on(settings.topic_deadletter) == []  # nothing dead-lettered
    (alert,) = sink.on(settings.topic_alerts)  # the positive's alert, through the loop's one sink
    assert json.loads(alert[2])["reading_id"] == payloads[1]["reading_id"]
    assert (REGISTRY.get_sample_value("rt_judging_failed_total") or 0.0) - before == 1
