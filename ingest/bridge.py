"""The ingest bridge: MQTT in, Kafka out, acknowledgement only once Kafka has the record.

Wiring only: :func:`ingest.route.route` decides, :mod:`ingest.mqtt_in` and
:mod:`ingest.kafka_out` move bytes.  A message is acknowledged to the broker
after Kafka acknowledged its record (the reading, or its dead letter), so a
reading a device saw acknowledged is never lost.  While Kafka is healthy the
network thread hands each record to the producer's buffer (which does not
block: the broker's receive-maximum bounds what is in flight); once a send
fails, records go through a sender thread that retries with backoff.  A
producer whose sends keep failing (a broker that came back with a new, empty
log can leave kafka-python's metadata and batches wedged) is replaced by a
new one after ``PRODUCER_RESET_ATTEMPTS`` failures of one record; the old
one's unsent batches fail and are retried through the new one.
Nothing a device sends can stop the bridge.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge

from ingest.kafka_out import make_producer
from ingest.mqtt_in import Ack, MqttSource
from ingest.route import Rejected, route
from schemas.common import utc_now
from schemas.deadletter import deadletter_value
from schemas.settings import Settings

if TYPE_CHECKING:
    from kafka import KafkaProducer

log = logging.getLogger(__name__)

MESSAGES_IN = Counter("rt_bridge_messages_in_total", "MQTT messages received by the bridge")
PRODUCED = Counter("rt_bridge_produced_total", "Records acknowledged by Kafka", ["kind"])
DEADLETTERED = Counter("rt_bridge_deadlettered_total", "Messages turned into dead letters", ["code"])
KAFKA_RETRIES = Counter("rt_bridge_kafka_retries_total", "Kafka sends retried after an error")
PRODUCER_RESETS = Counter("rt_bridge_producer_resets_total", "Kafka producers replaced after repeated failures")
PRODUCED_BY_KIND = {kind: PRODUCED.labels(kind) for kind in ("reading", "certificate", "deadletter")}
PENDING = Gauge("rt_bridge_pending", "Messages received but not yet acknowledged to MQTT", multiprocess_mode="livesum")


@dataclass
class _Outgoing:
    topic: str
    key: bytes
    value: bytes
    ack: Ack
    kind: str
    headers: list[tuple[str, bytes]] | None = None
    attempts: int = 0
    not_before: float = field(default=0.0)


PRODUCER_RESET_ATTEMPTS = 6
PRODUCER_RESET_MIN_INTERVAL_S = 15.0


class Bridge:
    def __init__(self, settings: Settings, producer: KafkaProducer | None = None) -> None:
        self._settings = settings
        self._own_producer = producer is None
        self._producer = producer or make_producer(settings, client_id="rapidtrace-bridge")
        self._reset_wanted = False
        self._last_reset = time.monotonic()
        self._queue: queue.Queue[_Outgoing] = queue.Queue()
        self._stop = threading.Event()
        self._accepting = True
        self._inflight = 0
        self._lock = threading.Lock()
        self._sender = threading.Thread(target=self._send_loop, name="bridge-sender", daemon=True)
        self._source = MqttSource(settings, self.on_message)
        self.last_kafka_error: str | None = None

    # --- lifecycle ---
    def start(self) -> None:
        self._sender.start()
        self._source.start()

    def wait_connected(self, timeout: float) -> bool:
        return self._source.connected.wait(timeout)

    def stop(self, flush_timeout: float = 10.0) -> None:
        """Stop taking messages, let Kafka acknowledge what is in flight, ack those, disconnect.

        Anything still unacknowledged stays with the broker's session and is redelivered next start.
        """
        self._accepting = False
        deadline = time.monotonic() + flush_timeout
        while time.monotonic() < deadline and (self._inflight or not self._queue.empty()):
            time.sleep(0.05)
        self._stop.set()
        self._sender.join(timeout=2)
        try:
            self._producer.flush(timeout=max(0.1, deadline - time.monotonic()))
        except Exception as exc:
            log.warning("Kafka flush on stop failed: %s", exc)
        time.sleep(0.2)  # let paho write the last PUBACKs
        self._source.stop()
        try:
            self._producer.close(timeout=2)
        except Exception as exc:  # records Kafka never took stay unacknowledged at the broker
            log.warning("Kafka producer close: %s", exc)

    @property
    def pending(self) -> int:
        return self._inflight

    @property
    def mqtt_disconnects(self) -> int:
        return self._source.disconnects

    # --- message path ---
    def on_message(self, mqtt_topic: str, payload: bytes, ack: Ack) -> None:
        if not self._accepting:
            return  # not acknowledged: the broker redelivers it to the next bridge
        MESSAGES_IN.inc()
        received_at = utc_now()
        result = route(mqtt_topic, payload, received_at)
        if isinstance(result, Rejected):
            DEADLETTERED.labels(result.code).inc()
            item = _Outgoing(
                topic=self._settings.topic_deadletter,
                key=mqtt_topic.encode(),
                value=deadletter_value("mqtt", mqtt_topic, payload, result.code, result.reason, received_at),
                ack=ack,
                kind="deadletter",
            )
        else:
            topic = self._settings.topic_readings if result.kind == "reading" else self._settings.topic_certificates
            item = _Outgoing(topic, result.key, result.value, ack, result.kind, result.headers)
        with self._lock:
            self._inflight += 1
        PENDING.set(self._inflight)
        if self.last_kafka_error is None and self._queue.empty():
            # Fast path: hand the record to the producer's buffer at once (it does not block while
            # metadata is known; the broker's receive-maximum bounds what can pile up there).
            self._send(item)
        else:
            self._queue.put(item)  # Kafka is failing: the sender thread retries with backoff, in order

    def _send(self, item: _Outgoing) -> None:
        try:
            future = self._producer.send(item.topic, key=item.key, value=item.value, headers=item.headers)
        except Exception as exc:  # buffer full, metadata unavailable, broker down
            self._retry_later(item, exc)
            return
        future.add_callback(self._delivered, item)
        future.add_errback(self._failed, item)

    def _delivered(self, item: _Outgoing, _metadata: object) -> None:
        item.ack()
        PRODUCED_BY_KIND[item.kind].inc()
        self.last_kafka_error = None
        with self._lock:
            self._inflight -= 1
        PENDING.set(self._inflight)

    def _failed(self, item: _Outgoing, exc: BaseException) -> None:
        self._retry_later(item, exc)

    def _retry_later(self, item: _Outgoing, exc: BaseException) -> None:
        item.attempts += 1
        backoff = min(
            self._settings.kafka_retry_backoff_s * 2 ** min(item.attempts - 1, 10),
            self._settings.kafka_retry_backoff_max_s,
        )
        item.not_before = time.monotonic() + backoff
        self.last_kafka_error = f"{type(exc).__name__}: {exc}"
        if item.attempts >= PRODUCER_RESET_ATTEMPTS:
            self._reset_wanted = True
        if item.attempts in (1, 10) or item.attempts % 50 == 0:
            log.warning("Kafka send failed (attempt %d, retry in %.1fs): %s", item.attempts, backoff,
                        self.last_kafka_error)
        KAFKA_RETRIES.inc()
        self._queue.put(item)

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            wait = item.not_before - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            self._maybe_replace_producer()
            self._send(item)

    def _maybe_replace_producer(self) -> None:
        if not (self._reset_wanted and self._own_producer):
            return
        if time.monotonic() - self._last_reset < PRODUCER_RESET_MIN_INTERVAL_S:
            return
        self._reset_wanted = False
        self._last_reset = time.monotonic()
        try:
            fresh = make_producer(self._settings, client_id="rapidtrace-bridge")
        except Exception as exc:  # the broker is still away: try again later
            log.warning("Kafka producer could not be replaced yet: %s", exc)
            return
        old, self._producer = self._producer, fresh
        PRODUCER_RESETS.inc()
        log.warning("Kafka sends kept failing: replaced the producer; its unsent records are retried")
        # closing fails the old producer's pending batches, whose errbacks queue them again
        threading.Thread(target=lambda: old.close(timeout=0), name="bridge-old-producer", daemon=True).start()
