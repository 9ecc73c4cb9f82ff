"""The fleet publisher against a real MQTT broker: bounded, paced, nothing lost."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from schemas.mqtt_url import BrokerAddress, parse_mqtt_url
from simulators.fleet import Fleet, FleetConfig
from simulators.malformed import MALFORMED_CASES
from simulators.publisher import Publisher, PublisherError, RateLimiter, publish_fleet

pytestmark = pytest.mark.integration


class Subscriber:
    """A paho QoS 1 subscriber collecting (topic, payload) pairs."""

    def __init__(self, url: str, protocol: str, topic_filter: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        address = parse_mqtt_url(url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311)
        if address.username:
            self.client.username_pw_set(address.username, address.password)
        self.client.on_connect = lambda c, *a: c.subscribe(topic_filter, qos=1)
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect(address.host, address.port)
        self.client.loop_start()
        assert self._ready.wait(10), "the test subscriber could not subscribe"

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def count(self) -> int:
        with self._lock:
            return len(self.messages)

    def wait_for(self, n: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.count() < n and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # let any extra (doubled) message arrive too

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscriber(request: pytest.FixtureRequest, mqtt_broker: Any) -> Iterator[Subscriber]:
    sub = Subscriber(mqtt_broker.url, mqtt_broker.protocol, request.param)
    try:
        yield sub
    finally:
        sub.close()


TAG = uuid.uuid4().hex[:10]
N = 900


@pytest.mark.parametrize("subscriber", [f"rt-test/{TAG}/#"], indirect=True)
def test_900_messages_with_100_outstanding_all_arrive(mqtt_broker: Any, subscriber: Subscriber) -> None:
    # 900, not more: a stock Mosquitto (max_queued_messages 1000) drops QoS 1 messages for a subscriber
    # that falls 1,000 behind, and the test's Python subscriber can, for a moment, on a busy machine.
    publisher = Publisher(mqtt_broker.url, mqtt_broker.protocol, max_outstanding=100).connect()
    for i in range(N):
        publisher.publish(f"rt-test/{TAG}/d{i % 7}", json.dumps({"n": i}).encode(), reading_id=str(i))
    stats = publisher.close(timeout_s=30)
    assert (stats.sent, stats.acked, stats.unacked, stats.rejected) == (N, N, 0, 0)
    assert 1 < stats.peak_outstanding <= 100
    assert len(publisher.sent_at) == N
    subscriber.wait_for(N)
    received = Counter(json.loads(payload)["n"] for _, payload in subscriber.messages)
    assert set(received) == set(range(N))
    assert max(received.values()) == 1


@pytest.mark.parametrize("subscriber", ["rt/v1/markets/+/stations/+/devices/+/readings"], indirect=True)
def test_publish_fleet_paces_and_mixes_duplicates_and_malformed(mqtt_broker: Any, subscriber: Subscriber) -> None:
    fleet = Fleet(FleetConfig(seed=int(TAG[:6], 16)))
    publisher = Publisher(mqtt_broker.url, mqtt_broker.protocol, max_outstanding=50).connect()
    started = time.monotonic()
    report = publish_fleet(publisher, fleet, rate=1000, count=400, duplicates_pct=10, malformed_pct=10, seed=1)
    elapsed = time.monotonic() - started
    assert report.readings + report.duplicates + report.malformed == 400
    assert report.duplicates > 10 and report.malformed > 10
    assert report.stats.acked == 400 and report.stats.unacked == 0
    assert 0.3 < elapsed < 5.0  # 400 messages at 1,000/s
    subscriber.wait_for(400)
    ours: Counter[str] = Counter()
    malformed = {case.payload_bytes for case in MALFORMED_CASES}
    malformed_seen = 0
    for _, payload in subscriber.messages:
        if payload in malformed:
            malformed_seen += 1
            continue
        reading_id = json.loads(payload)["reading_id"]
        if reading_id in publisher.sent_at:
            ours[reading_id] += 1
    assert set(ours) == set(publisher.sent_at) and len(ours) == report.readings
    assert sum(ours.values()) == report.readings + report.duplicates
    assert malformed_seen >= report.malformed


@pytest.mark.parametrize("subscriber", [f"rt-test/{TAG}/again/#"], indirect=True)
def test_publish_fleet_republishes_now_and_then(mqtt_broker: Any, subscriber: Subscriber) -> None:
    again = [(f"rt-test/{TAG}/again/{i}", f"certificate {i}".encode()) for i in range(3)]
    publisher = Publisher(mqtt_broker.url, mqtt_broker.protocol).connect()
    report = publish_fleet(publisher, Fleet(FleetConfig(seed=2)), rate=500, duration_s=1.1, republish=again,
                           republish_every_s=0.3)
    assert report.republished == 9  # at 0.3, 0.6 and 0.9 s
    assert report.stats.acked == report.readings + 9
    subscriber.wait_for(9)
    assert Counter(payload for _, payload in subscriber.messages) == {payload: 3 for _, payload in again}


def test_publish_fleet_stops_when_asked(mqtt_broker: Any) -> None:
    stop = threading.Event()
    publisher = Publisher(mqtt_broker.url, mqtt_broker.protocol).connect()
    timer = threading.Timer(0.3, stop.set)
    started = time.monotonic()
    timer.start()
    report = publish_fleet(publisher, Fleet(FleetConfig(seed=9)), rate=200, stop=stop)
    elapsed = time.monotonic() - started
    timer.cancel()
    assert 0.3 <= elapsed < 5
    assert 20 < report.readings <= 200 * elapsed + 20
    assert report.stats.unacked == 0


def test_an_unreachable_broker_is_a_clear_error() -> None:
    with pytest.raises(PublisherError, match=r"cannot reach the MQTT broker at 127\.0\.0\.1:1"):
        Publisher("mqtt://127.0.0.1:1", connect_timeout_s=2).connect()


def test_a_bad_url_is_a_clear_error() -> None:
    with pytest.raises(PublisherError, match="not an MQTT URL"):
        Publisher("http://127.0.0.1:1883")


@pytest.mark.parametrize(("url", "address"), [
    ("mqtt://127.0.0.1", BrokerAddress("127.0.0.1", 1883, None, None)),
    ("tcp://u%40x:p%3Aw@broker:1884", BrokerAddress("broker", 1884, "u@x", "p:w")),
    ("mqtts://broker", BrokerAddress("broker", 8883, None, None, tls=True)),
    ("ssl://broker:9883", BrokerAddress("broker", 9883, None, None, tls=True)),
])
def test_mqtt_urls_the_publisher_and_the_bridge_share(url: str, address: BrokerAddress) -> None:
    assert parse_mqtt_url(url) == address
    assert Publisher(url).address == address


@pytest.mark.parametrize("url", ["http://127.0.0.1:1883", "mqtt://", "mqtt://host:notaport", "127.0.0.1:1883"])
def test_bad_mqtt_urls_are_rejected(url: str) -> None:
    with pytest.raises(ValueError, match="MQTT URL"):
        parse_mqtt_url(url)


def test_rate_limiter_paces() -> None:
    limiter = RateLimiter(500)
    started = time.monotonic()
    for _ in range(200):
        limiter.wait()
    assert 0.35 < time.monotonic() - started < 2.0
