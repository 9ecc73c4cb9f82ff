"""``rapidtrace ingest``: run the bridge until SIGTERM/SIGINT, then flush and exit."""

from __future__ import annotations

import logging
import signal
import threading

from ingest.bridge import Bridge
from schemas.settings import Settings

log = logging.getLogger(__name__)


def run_bridge(settings: Settings, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    bridge = Bridge(settings)
    bridge.start()
    log.info("bridge started: MQTT %s (protocol %s) -> Kafka %s", settings.mqtt_url, settings.mqtt_protocol,
             settings.kafka_bootstrap)
    stop.wait()
    log.info("bridge stopping: flushing %d in flight", bridge.pending)
    bridge.stop()
