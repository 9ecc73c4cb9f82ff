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
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import Counter

from schemas.mqtt_url import parse_mqtt_url
from schemas.settings import Settings

log = logging.getLogger(__name__)

DISCONNECTS = Counter("rt_bridge_mqtt_disconnects_total", "Unexpected disconnections of the bridge from MQTT")

Ack = Callable[[], None]
OnMessage = Callable[[str, bytes, Ack], None]


def subscription_filters(settings: Settings) -> list[str]:
    """Readings and entry-scanner certificates, as shared subscriptions where MQTT 5 allows them."""
    filters = [settings.mqtt_topic_filter, settings.mqtt_certificate_filter]
    if settings.mqtt_protocol == "5" and settings.mqtt_shared_group:
        return [f"$share/{settings.mqtt_shared_group}/{f}" for f in filters]
    return filters


#: ``(topic bytes, payload bytes, packet id)`` of a QoS 1 PUBLISH, straight from the packet.
OnPublish = Callable[[bytes, bytes, int], None]


class _BufferedClient(mqtt.Client):
    """paho's client reading the socket in 64 KiB chunks, with a lean path for QoS 1 PUBLISH packets.

    paho 2.x reads each packet with several small ``recv`` calls (1 byte of type, then the
    remaining length byte by byte, then the body) and handles one packet per ``select`` wake-up:
    four system calls and a wake-up per reading.  Serving those reads from one buffer, and
    handling every packet already buffered before going back to ``select``, cut the bridge's
    CPU per message measurably (see README, benchmarks).

    A QoS 1 PUBLISH without MQTT 5 properties (what readers send) goes from the packet's bytes
    straight to ``on_publish`` (:meth:`_handle_publish`): paho's general path builds a
    Properties object, an MQTTMessage, a log line and a topic-filter match for every message,
    about a tenth of the bridge's CPU (``python -m bench.profile``).  Any other packet (QoS 0 or 2,
    MQTT 5 properties present, no ``on_publish`` set) takes paho's own path.

    Relies on paho 2.x internals (``_sock_recv``, ``loop_read``, ``_handle_publish``,
    ``_in_packet``), hence the ``paho-mqtt<3`` pin.
    """

    _CHUNK = 64 * 1024
    _WRITE_EVERY = 256  # packets read between writes of what is queued (acknowledgements)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0
        self._rsock: object = None
        self.on_publish_qos1: OnPublish | None = None

    def _handle_publish(self) -> mqtt.MQTTErrorCode:
        header, packet = self._in_packet["command"], self._in_packet["packet"]
        handler = self.on_publish_qos1
        if handler is None or (header & 0x06) != 0x02 or len(packet) < 4:
            return super()._handle_publish()
        end_topic = 2 + int.from_bytes(packet[0:2], "big")
        body = end_topic + 2  # after the packet id
        if self._protocol == mqtt.MQTTv5:
            if len(packet) <= body or packet[body] != 0:  # MQTT 5 properties present: paho decodes them
                return super()._handle_publish()
            body += 1
        if len(packet) < body:
            return super()._handle_publish()  # malformed: paho says so
        mid = int.from_bytes(packet[end_topic:end_topic + 2], "big")
        handler(bytes(packet[2:end_topic]), bytes(packet[body:]), mid)
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rsock is not self._sock:  # a new connection: nothing buffered belongs to it
            self._rbuf, self._rpos, self._rsock = b"", 0, self._sock
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(max(bufsize, self._CHUNK))  # may raise BlockingIOError
            if len(data) <= bufsize:
                return data
            self._rbuf, self._rpos = data, 0
        out = self._rbuf[self._rpos:self._rpos + bufsize]
        self._rpos += len(out)
        return out

    def _buffered(self) -> bool:
        return self._rsock is self._sock and self._rpos < len(self._rbuf)

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        rc = super().loop_read(max_packets)
        handled = 1
        while rc == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS and self._sock is not None and self._buffered():
            rc = super().loop_read(max_packets)
            handled += 1
            if handled % self._WRITE_EVERY == 0 and self.want_write():
                # A backlog can keep this loop busy for minutes (a packet straddling the end of the
                # buffer refills it); write the acknowledgements queued meanwhile, or the broker sees a
                # silent client and drops it at 1.5 x keepalive.
                self.loop_write()
        return rc


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
        self.disconnects = 0  # unexpected ones (the broker dropped us, the network failed)
        v5 = settings.mqtt_protocol == "5"
        self._client = _BufferedClient(
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
        if self._address.tls:
            self._client.tls_set()  # the system's CA certificates; the broker's name is checked
        self._client.on_connect = self._handle_connect
        self._client.on_disconnect = self._handle_disconnect
        self._client.on_message = self._handle_message
        self._client.on_publish_qos1 = self._handle_publish_qos1

    def start(self) -> None:
        kwargs: dict[str, object] = {"keepalive": self._settings.mqtt_keepalive_s}
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
            self.disconnects += 1
            DISCONNECTS.inc()
            self.last_error = f"MQTT disconnected: {reason}"
            log.warning("%s; reconnecting", self.last_error)

    def _handle_publish_qos1(self, topic: bytes, payload: bytes, mid: int) -> None:
        client = self._client

        def ack() -> None:
            client.ack(mid, 1)

        try:
            self._on_message(topic.decode("utf-8", errors="replace"), payload, ack)
        except Exception:  # never let one message kill the network thread
            log.exception("bridge failed on a message from %r; it stays unacknowledged", topic[:200])

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
