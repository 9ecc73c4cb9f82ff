"""MQTT side of the bridge: the only ingest module that imports paho.

A persistent session (stable client id; MQTT 5 session expiry, or MQTT 3.1.1
``clean_session=False``) keeps readings at the broker while the bridge is
down.  Messages are acknowledged by the caller (``manual_ack``), never on
return from the callback.  Subscriptions are made in ``on_connect`` so a
reconnect resubscribes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from schemas.settings import Settings

log = logging.getLogger(__name__)

Ack = Callable[[], None]
OnMessage = Callable[[str, bytes, Ack], None]


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None


def parse_mqtt_url(url: str) -> BrokerAddress:
    parsed = urlparse(url)
    if parsed.scheme not in {"mqtt", "tcp"} or not parsed.hostname:
        raise ValueError(f"MQTT URL {url!r} must look like mqtt://[user:pass@]host:port")
    return BrokerAddress(
        host=parsed.hostname,
        port=parsed.port or 1883,
        username=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else None,
    )


def subscription_filters(settings: Settings) -> list[str]:
    """Readings and entry-scanner certificates, as shared subscriptions where MQTT 5 allows them."""
    filters = [settings.mqtt_topic_filter, settings.mqtt_certificate_filter]
    if settings.mqtt_protocol == "5" and settings.mqtt_shared_group:
        return [f"$share/{settings.mqtt_shared_group}/{f}" for f in filters]
    return filters


class MqttSource:
    """Connects, subscribes at QoS 1 and hands each message to ``on_message`` with its ack."""

    def __init__(self, settings: Settings, on_message: OnMessage) -> None:
        if not settings.mqtt_url:
            raise ValueError("RT_MQTT_URL is not set")
        self._settings = settings
        self._address = parse_mqtt_url(settings.mqtt_url)
        self._on_message = on_message
        self.connected = threading.Event()
        self.last_error: str | None = None
        v5 = settings.mqtt_protocol == "5"
        self._client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=settings.mqtt_client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        self._client.max_inflight_messages_set(settings.mqtt_receive_maximum)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)
        username = settings.mqtt_username or self._address.username
        password = (
            settings.mqtt_password.get_secret_value() if settings.mqtt_password else self._address.password
        )
        if username:
            self._client.username_pw_set(username, password)
        self._client.on_connect = self._handle_connect
        self._client.on_disconnect = self._handle_disconnect
        self._client.on_message = self._handle_message

    def start(self) -> None:
        kwargs: dict[str, object] = {"keepalive": 30}
        if self._settings.mqtt_protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self._settings.mqtt_session_expiry_s
            props.ReceiveMaximum = min(self._settings.mqtt_receive_maximum, 65535)
            kwargs.update(clean_start=False, properties=props)
        self._client.connect_async(self._address.host, self._address.port, **kwargs)  # type: ignore[arg-type]
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _handle_connect(self, client: mqtt.Client, _u: object, flags: object, reason: object, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            self.last_error = f"MQTT connect refused: {reason}"
            log.error(self.last_error)
            return
        for topic_filter in subscription_filters(self._settings):
            client.subscribe(topic_filter, qos=1)
        self.last_error = None
        self.connected.set()
        log.info("MQTT connected to %s:%s (session present: %s)", self._address.host, self._address.port,
                 getattr(flags, "session_present", "?"))

    def _handle_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        self.connected.clear()
        if getattr(reason, "is_failure", False):
            self.last_error = f"MQTT disconnected: {reason}"
            log.warning("%s; reconnecting", self.last_error)

    def _handle_message(self, client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        mid, qos = msg.mid, msg.qos

        def ack() -> None:
            if qos > 0:
                client.ack(mid, qos)

        try:
            topic = msg._topic.decode("utf-8", errors="replace")
            self._on_message(topic, bytes(msg.payload), ack)
        except Exception:  # never let one message kill the network thread
            log.exception("bridge failed on a message from %r; it stays unacknowledged", msg.topic)
