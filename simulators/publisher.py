"""Publish a simulated fleet over MQTT (paho-mqtt 2.x, QoS 1), paced or flat out.

:class:`Publisher` bounds the messages sent but not yet acknowledged
(paho silently overwrites queued QoS 1 messages once more than 65,535 are
unacknowledged: MEASURED.md), remembers when each reading was published for
latency measurement, and waits for every PUBACK on close.
:func:`publish_fleet` drives it from a :class:`~simulators.fleet.Fleet`,
with optional duplicates and malformed messages; :func:`run_simulate` is
``rapidtrace simulate``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from schemas.common import utc_now
from schemas.errors import MqttFailure
from schemas.mqtt_url import parse_mqtt_url
from schemas.settings import Settings
from simulators.district import DISTRICT
from simulators.entry_scans import certificate_pool, entry_messages, fleet_district
from simulators.faults import add_fleet_faults, describe
from simulators.fleet import CertificateRef, Fleet, FleetConfig, market_ids
from simulators.malformed import MALFORMED_CASES
from simulators.progress import ProgressReport, open_progress


class PublisherError(MqttFailure):
    """The publisher could not connect or was refused by the broker."""


@dataclass(frozen=True)
class PublishStats:
    sent: int
    acked: int
    rejected: int  # PUBACK with a failure reason code (MQTT 5)
    unacked: int  # still unacknowledged when close() gave up
    elapsed_s: float
    peak_outstanding: int = 0

    @property
    def rate(self) -> float:
        return self.acked / self.elapsed_s if self.elapsed_s > 0 else 0.0


class Publisher:
    """A QoS 1 MQTT publisher with at most ``max_outstanding`` unacknowledged messages."""

    def __init__(self, url: str, protocol: str = "3.1.1", client_id: str | None = None,
                 max_outstanding: int = 1000, *, record_times: bool = True,
                 progress: TextIO | None = None, progress_every_s: float = 5.0,
                 connect_timeout_s: float = 10.0, progress_total: int | None = None) -> None:
        if protocol not in ("3.1.1", "5"):
            raise PublisherError(f"protocol must be '3.1.1' or '5', not {protocol!r}")
        if not 1 <= max_outstanding <= 65_000:
            raise PublisherError("max_outstanding must be between 1 and 65,000")
        try:
            self.address = parse_mqtt_url(url)
        except ValueError as exc:
            raise PublisherError(f"not an MQTT URL: {exc}") from None
        self.protocol = protocol
        self.max_outstanding = max_outstanding
        self.connect_timeout_s = connect_timeout_s
        self.sent_at: dict[str, float] = {}
        self._record_times = record_times
        self._progress: ProgressReport | None = (open_progress("simulate", progress_total, unit="msgs", stream=progress,
                                        every_s=progress_every_s) if progress is not None else None)
        self._cond = threading.Condition()
        self._limit = max_outstanding
        self._sent = self._acked = self._rejected = self._peak = 0
        self._connected = threading.Event()
        self._connect_error: str | None = None
        self._started = self._last_report = time.monotonic()
        self._client = self._make_client(client_id or f"rt-sim-{os.getpid()}-{random.getrandbits(24):06x}")

    def _make_client(self, client_id: str) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv5 if self.protocol == "5" else mqtt.MQTTv311)
        # Unlimited in paho: our own bound (self._limit) keeps paho's queue short, and paho's
        # per-acknowledgement scan of its queue only runs when its in-flight limit is set.
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(1, 5)
        if self.address.username is not None:
            client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        client.on_disconnect = self._on_disconnect
        return client

    # --- paho callbacks (network thread) -------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            self._connect_error = f"broker refused the connection: {reason}"
        else:
            receive_max = getattr(properties, "ReceiveMaximum", None) if properties else None
            with self._cond:
                if receive_max:
                    self._limit = min(self.max_outstanding, int(receive_max))
                self._cond.notify_all()
        self._connected.set()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any,
                    properties: Any) -> None:
        with self._cond:
            self._acked += 1
            if reason is not None and reason.is_failure:
                self._rejected += 1
            self._cond.notify_all()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        if not self._connected.is_set():
            self._connect_error = f"disconnected before the connection was accepted: {reason}"
            self._connected.set()

    # --- API -----------------------------------------------------------------------------------

    def connect(self) -> Publisher:
        a = self.address
        try:
            self._client.connect(a.host, a.port, keepalive=30)
        except OSError as exc:
            raise PublisherError(f"cannot reach the MQTT broker at {a.host}:{a.port}: {exc}") from exc
        self._client.loop_start()
        if not self._connected.wait(self.connect_timeout_s) or self._connect_error:
            self._client.loop_stop()
            reason = self._connect_error or f"no CONNACK within {self.connect_timeout_s:g} s"
            raise PublisherError(f"MQTT broker {a.host}:{a.port}: {reason}")
        self._started = self._last_report = time.monotonic()
        return self

    def publish(self, topic: str, payload: bytes, reading_id: str | None = None,
                stop: threading.Event | None = None) -> bool:
        """Publish at QoS 1; blocks while ``max_outstanding`` messages await their PUBACK.

        Returns False, without publishing, when ``stop`` is set while waiting.
        """
        with self._cond:
            while self._sent - self._acked >= self._limit:
                if stop is not None and stop.is_set():
                    return False
                self._cond.wait(0.5)
            self._sent += 1
            self._peak = max(self._peak, self._sent - self._acked)
        if reading_id is not None and self._record_times:
            self.sent_at[reading_id] = time.time()
        self._client.publish(topic, payload, qos=1)
        if self._progress is not None and time.monotonic() - self._last_report >= 0.2:
            self._last_report = time.monotonic()
            s = self.stats()
            self._progress.update(s.acked, f"sent {s.sent:,} outstanding {s.unacked:,}")
        return True

    @property
    def outstanding(self) -> int:
        with self._cond:
            return self._sent - self._acked

    def stats(self) -> PublishStats:
        with self._cond:
            return PublishStats(self._sent, self._acked, self._rejected, self._sent - self._acked,
                                time.monotonic() - self._started, self._peak)

    def flush(self, timeout_s: float = 60.0) -> bool:
        """Wait (up to ``timeout_s``) for every PUBACK so far; True when none is missing."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._sent > self._acked and time.monotonic() < deadline:
                self._cond.wait(min(1.0, max(0.0, deadline - time.monotonic())))
            return self._sent <= self._acked

    def close(self, timeout_s: float = 60.0) -> PublishStats:
        """Wait (up to ``timeout_s``) for every PUBACK, then disconnect."""
        self.flush(timeout_s)
        stats = self.stats()
        if self._progress is not None:
            self._progress.update(stats.acked, f"sent {stats.sent:,} outstanding {stats.unacked:,}")
            self._progress.close()
            self._progress = None
        self._client.disconnect()
        self._client.loop_stop()
        return stats

    def __enter__(self) -> Publisher:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()


class RateLimiter:
    """Token bucket: ``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 20)
        self._tokens = 1.0
        self._last = time.monotonic()

    def wait(self) -> None:
        while True:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return
            time.sleep((1.0 - self._tokens) / self.rate)


@dataclass(frozen=True)
class SimulateReport:
    readings: int  # distinct fleet readings published
    duplicates: int  # re-publications of an earlier reading (same reading_id)
    malformed: int
    suppressed: int  # readings a fault scenario suppressed
    stats: PublishStats
    republished: int = 0  # messages of ``republish`` sent again


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def publish_fleet(publisher: Publisher, fleet: Fleet, *, rate: float | None = None,
                  duration_s: float | None = None, count: int | None = None,
                  duplicates_pct: float = 0.0, malformed_pct: float = 0.0, seed: int = 0,
                  stop: threading.Event | None = None,
                  clock: Callable[[], datetime] = utc_now, close_timeout_s: float = 60.0,
                  republish: Sequence[tuple[str, bytes]] = (), republish_every_s: float = 60.0) -> SimulateReport:
    """Publish until ``count`` ticks, ``duration_s`` seconds or ``stop`` (whichever first), then close.

    Each tick publishes one message: a malformed one (``malformed_pct`` percent), a duplicate of a
    recent reading (``duplicates_pct`` percent) or a new fleet reading (none when a fault
    suppresses it).  ``rate`` None or 0 means flat out.  Every ``republish_every_s`` seconds the
    ``republish`` messages (e.g. certificates, which the chain stores once) go out again, outside the ticks.
    """
    rng = random.Random(seed)
    limiter = RateLimiter(rate) if rate else None
    cases = [c for c in MALFORMED_CASES if c.subscribed]
    recent: deque[tuple[str, bytes]] = deque(maxlen=1000)
    readings = duplicates = malformed = suppressed = ticks = 0
    deadline = time.monotonic() + duration_s if duration_s is not None else None
    republished, next_republish = 0, time.monotonic() + republish_every_s
    try:
        while (count is None or ticks < count) and not (stop is not None and stop.is_set()):
            if deadline is not None and time.monotonic() >= deadline:
                break
            if republish and republish_every_s > 0 and time.monotonic() >= next_republish:
                republished += sum(publisher.publish(topic, body, stop=stop) for topic, body in republish)
                next_republish = time.monotonic() + republish_every_s
            ticks += 1
            if limiter is not None:
                limiter.wait()
            draw = rng.random() * 100
            if draw < malformed_pct:
                case = rng.choice(cases)
                malformed += publisher.publish(case.topic, case.payload_bytes, stop=stop)
            elif draw < malformed_pct + duplicates_pct and recent:
                duplicates += publisher.publish(*rng.choice(recent), stop=stop)
            else:
                item = fleet.reading(clock())
                if item is None:
                    suppressed += 1
                    continue
                topic, payload = item
                body = encode(payload)
                if publisher.publish(topic, body, str(payload.get("reading_id")), stop=stop):
                    recent.append((topic, body))
                    readings += 1
    finally:
        stats = publisher.close(close_timeout_s)
    return SimulateReport(readings, duplicates, malformed, suppressed, stats, republished)


# --- certificates from market entry scanners --------------------------------------------------


def district_start(now: datetime) -> datetime:
    """When the simulated district's first lots were harvested: midnight (UTC) four days before ``now``,
    so a restarted simulator with the same seed republishes the same records the same day."""
    return datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=4)


def district_messages(config: FleetConfig, count: int, *, seed: int, now: datetime
                      ) -> tuple[list[tuple[str, bytes]], list[CertificateRef]]:
    """A ``count``-record district chain as messages on the entry topics of the fleet's markets, and its
    stall lots for ``Fleet(certificate_pool=...)``."""
    markets = market_ids(config)
    records = fleet_district(markets, count, seed=seed, start=district_start(now))
    return entry_messages(records, fallback_market=markets[0]), certificate_pool(records)


def publish_all(publisher: Publisher, messages: Sequence[tuple[str, bytes]], *,
                stop: threading.Event | None = None, timeout_s: float = 30.0) -> int:
    """Publish ``messages`` and wait for the broker's acknowledgements; returns how many were sent."""
    sent = 0
    for topic, payload in messages:
        if not publisher.publish(topic, payload, stop=stop):
            break
        sent += 1
    if not publisher.flush(timeout_s):
        raise PublisherError(f"the broker did not acknowledge {sent:,} messages within {timeout_s:g} s")
    return sent


# --- rapidtrace simulate ----------------------------------------------------------------------


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    d = FleetConfig()
    add = parser.add_argument
    add("--mqtt-url", help="broker URL (default: RT_MQTT_URL, else the embedded broker on RT_MQTT_PORT)")
    add("--protocol", choices=("3.1.1", "5"), default=None, help="MQTT protocol version (default: RT_MQTT_PROTOCOL)")
    add("--client-id", help="MQTT client id (default: unique per process)")
    add("--rate", type=float, default=50.0, help="messages per second; 0 = as fast as possible")
    add("--count", type=int, help="stop after this many messages")
    add("--duration", type=float, help="stop after this many seconds (default: run until Ctrl-C)")
    add("--markets", type=int, default=d.markets, help="number of markets")
    add("--district", action="store_true",
        help="publish from the 47 stations of the simulated district (simulators/district.py), not --markets")
    add("--market-prefix", default=d.market_prefix, help="markets are named PREFIX-01, PREFIX-02, ...")
    add("--stations", type=int, default=d.stations_per_market, help="stations per market")
    add("--readers", type=int, default=d.readers_per_station, help="readers per station")
    add("--positive-rate", type=float, default=d.positive_rate, help="fraction, e.g. 0.003")
    add("--suspicious-rate", type=float, default=d.suspicious_rate, help="fraction")
    add("--invalid-rate", type=float, default=d.invalid_rate, help="fraction")
    add("--disagreement-rate", type=float, default=d.disagreement_rate,
        help="fraction of readings whose device_result disagrees with the ratio rule")
    add("--duplicates", type=float, default=0.0, help="percent of messages re-publishing a reading")
    add("--malformed", type=float, default=0.0, help="percent of messages that are malformed")
    add("--no-faults", action="store_true",
        help="no fault scenarios (by default a strip lot goes bad, a reader falls silent, one mismatches)")
    add("--bad-lot-after", type=int, default=200, help="strips of the busiest lot before it goes bad")
    add("--silent-after", type=float, default=600.0, help="seconds before the first reader falls silent")
    add("--no-certificates", action="store_true",
        help="publish no certificate chain and reference none (by default a small district chain is "
             "published on the markets' entry topics first)")
    add("--certificates", type=int, default=300, help="certificate records in the district chain")
    add("--certificates-every", type=float, default=60.0,
        help="seconds between re-publications of the chain (the chain stores a record once; a bridge "
             "that subscribed late still gets it); 0 = publish it once")
    add("--seed", type=int, default=None, help="random seed (default: random)")
    add("--max-outstanding", type=int, default=1000, help="bound on unacknowledged messages")
    add("--quiet", action="store_true", help="no progress lines")


def fleet_config_from_args(args: argparse.Namespace, seed: int) -> FleetConfig:
    return FleetConfig(markets=args.markets, stations_per_market=args.stations,
                       readers_per_station=args.readers, positive_rate=args.positive_rate,
                       suspicious_rate=args.suspicious_rate, invalid_rate=args.invalid_rate,
                       disagreement_rate=args.disagreement_rate, seed=seed, market_prefix=args.market_prefix,
                       district=DISTRICT if getattr(args, "district", False) else None)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (a second Ctrl-C interrupts at once); main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _say(message: str) -> None:
    print(f"simulate: {message}", file=sys.stderr, flush=True)


def _fleet(args: argparse.Namespace, config: FleetConfig, publisher: Publisher, now: datetime,
           stop: threading.Event) -> tuple[Fleet, list[tuple[str, bytes]]]:
    """The fleet of ``config`` with its fault scenarios, after publishing its district's certificates
    (returned, to publish again now and then)."""
    messages: list[tuple[str, bytes]] = []
    pool: list[CertificateRef] = []
    if not args.no_certificates and args.certificates > 0:
        messages, pool = district_messages(config, args.certificates, seed=config.seed, now=now)
        publish_all(publisher, messages, stop=stop)
        _say(f"published {len(messages):,} certificate records on the markets' entry topics "
             f"(again every {args.certificates_every:g} s); readings sample {len(pool):,} stall lots")
    fleet = Fleet(config, certificate_pool=pool)
    if not args.no_faults:
        faults = add_fleet_faults(fleet, now, silent_after=timedelta(seconds=args.silent_after),
                                  bad_lot_after=args.bad_lot_after, seed=config.seed)
        for line in describe(faults):
            _say(f"fault: {line}")
    return fleet, messages


def run_simulate(args: argparse.Namespace, settings: Settings) -> int:
    """``rapidtrace simulate``: returns the process exit code."""
    url = args.mqtt_url or settings.mqtt_url or f"mqtt://127.0.0.1:{settings.mqtt_port}"
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    stop = threading.Event()
    try:
        config = fleet_config_from_args(args, seed)
        publisher = Publisher(url, args.protocol or settings.mqtt_protocol, args.client_id, args.max_outstanding,
                              record_times=False, progress=None if args.quiet else sys.stderr,
                              progress_total=args.count).connect()
    except (PublisherError, ValueError) as exc:
        _say(str(exc))
        return 2
    with _stop_on_signals(stop):
        try:
            fleet, certificates = _fleet(args, config, publisher, utc_now(), stop)
        except PublisherError as exc:
            publisher.close(timeout_s=1.0)
            _say(str(exc))
            return 1
        _say(f"{len(fleet.devices)} readers publishing to {url} at "
             f"{'full speed' if not args.rate else f'{args.rate:g}/s'} (seed {seed})")
        report = publish_fleet(publisher, fleet, rate=args.rate, duration_s=args.duration, count=args.count,
                               duplicates_pct=args.duplicates, malformed_pct=args.malformed, seed=seed,
                               stop=stop, close_timeout_s=30.0, republish=certificates,
                               republish_every_s=args.certificates_every)
    s = report.stats
    _say(f"published {report.readings:,} readings, {report.duplicates:,} duplicates, "
         f"{report.republished:,} certificates again, "
         f"{report.malformed:,} malformed ({report.suppressed:,} suppressed by faults) in {s.elapsed_s:.1f}s; "
         f"acked {s.acked:,} messages ({s.rate:,.0f}/s), rejected {s.rejected:,}, unacked {s.unacked:,}")
    return 0 if s.unacked == 0 and s.rejected == 0 else 1
