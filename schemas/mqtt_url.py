"""MQTT broker URLs (``RT_MQTT_URL``): what the bridge and the simulators connect to. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlparse


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool = False


PLAIN_SCHEMES = frozenset({"mqtt", "tcp"})
TLS_SCHEMES = frozenset({"mqtts", "ssl"})


def parse_mqtt_url(url: str) -> BrokerAddress:
    """``mqtt://[user:pass@]host[:port]`` (also ``tcp://``); ``mqtts://`` or ``ssl://`` for TLS (port 8883)."""
    parsed = urlparse(url)
    try:
        port = parsed.port
    except ValueError as exc:
        raise ValueError(f"MQTT URL {url!r} has a bad port: {exc}") from None
    if parsed.scheme not in PLAIN_SCHEMES | TLS_SCHEMES or not parsed.hostname:
        raise ValueError(f"MQTT URL {url!r} must look like mqtt://[user:pass@]host:port (or mqtts:// for TLS)")
    tls = parsed.scheme in TLS_SCHEMES
    return BrokerAddress(
        host=parsed.hostname,
        port=port or (8883 if tls else 1883),
        username=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else None,
        tls=tls,
    )
