"""Per-device MQTT accounts against a real Mosquitto 2.0 (a second broker on a free port).

The password and ACL files come from the device registry (storage/device_credentials.py);
the broker must refuse what they do not grant, and a revoked device must be
refused after a reload (SIGHUP), without restarting the broker.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from runtime.mosquitto import MOSQUITTO_BIN, Mosquitto
from runtime.ports import free_port
from schemas.settings import Settings
from storage.db import Connection, connect
from storage.device_credentials import MosquittoFiles, add_device, ensure_bridge, revoke_device, write_mosquitto_files
from tests.helpers import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not MOSQUITTO_BIN.exists() and shutil.which("mosquitto") is None,
                       reason="mosquitto is not installed"),
]

ROOT = Path(__file__).resolve().parents[2]
FILTERS = [Settings().mqtt_topic_filter, Settings().mqtt_certificate_filter]
NOT_AUTHORIZED = 135
BRIDGE_USER, BRIDGE_PASSWORD = "rapidtrace-bridge", "bridge-secret-" + uuid.uuid4().hex


@dataclass
class Client:
    """A paho MQTT 5 client that records what the broker says to it."""

    port: int
    username: str | None
    password: str | None
    connack: ReasonCode | None = None
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    pubacks: dict[int, int] = field(default_factory=dict)
    disconnected: threading.Event = field(default_factory=threading.Event)
    _connected: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.paho = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                                client_id=f"t-{uuid.uuid4().hex[:10]}", protocol=mqtt.MQTTv5)
        if self.username is not None:
            self.paho.username_pw_set(self.username, self.password)
        self.paho.on_connect = self._on_connect
        self.paho.on_message = lambda _c, _u, msg: self.messages.append((msg.topic, bytes(msg.payload)))
        self.paho.on_publish = lambda _c, _u, mid, rc, _p: self.pubacks.__setitem__(mid, rc.value)
        self.paho.on_disconnect = lambda *_: self.disconnected.set()

    def _on_connect(self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        self.connack = rc
        self._connected.set()

    def connect(self) -> bool:
        """Connect and wait for CONNACK; True when the broker accepted."""
        self.paho.connect("127.0.0.1", self.port)
        self.paho.loop_start()
        assert self._connected.wait(5), "no CONNACK"
        assert self.connack is not None
        return not self.connack.is_failure

    def publish(self, topic: str, payload: bytes) -> int:
        """Publish at QoS 1; returns the PUBACK reason code (0 = accepted, 135 = not authorized)."""
        info = self.paho.publish(topic, payload, qos=1)
        wait_for(lambda: info.mid in self.pubacks, timeout=5, interval=0.02, what="PUBACK")
        return self.pubacks[info.mid]

    def subscribe(self, topic_filter: str) -> None:
        done = threading.Event()
        self.paho.on_subscribe = lambda *_: done.set()
        self.paho.subscribe(topic_filter, qos=1)
        assert done.wait(5), "no SUBACK"

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()


def topic(market: str, station: str, device: str) -> str:
    return f"rt/v1/markets/{market}/stations/{station}/devices/{device}/readings"


@pytest.fixture
def conn(db_dsn: str) -> Iterator[Connection]:
    c = connect(db_dsn)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def files(tmp_path: Path) -> MosquittoFiles:
    return MosquittoFiles(tmp_path / "auth" / "passwd", tmp_path / "auth" / "acl")


@pytest.fixture
def registry(conn: Connection, files: MosquittoFiles) -> dict[str, str]:
    """Two readers and the bridge account, written to Mosquitto's files; returns the passwords."""
    d1 = add_device(conn, "m1", "s1", "dev-1", "test")
    d2 = add_device(conn, "m1", "s2", "dev-2", "test")
    ensure_bridge(conn, BRIDGE_USER, BRIDGE_PASSWORD, "test")
    conn.commit()
    assert write_mosquitto_files(conn, files, FILTERS) == 3
    return {"dev-1": d1.password, "dev-2": d2.password}


@pytest.fixture
def broker(tmp_path: Path, files: MosquittoFiles, registry: dict[str, str]) -> Iterator[Mosquitto]:
    extra = f"allow_anonymous false\npassword_file {files.password_file}\nacl_file {files.acl_file}\n"
    with Mosquitto(free_port(), tmp_path / "broker", extra_conf=extra) as running:
        yield running


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for c in made:
        c.close()


def client(made: list[Client], port: int, username: str | None, password: str | None) -> Client:
    c = Client(port, username, password)
    made.append(c)
    return c


def bridge_subscriber(made: list[Client], port: int) -> Client:
    sub = client(made, port, BRIDGE_USER, BRIDGE_PASSWORD)
    assert sub.connect()
    sub.subscribe(f"$share/g/{FILTERS[0]}")
    return sub


def test_device_publishes_only_to_its_own_topic(broker: Mosquitto, registry: dict[str, str],
                                                clients: list[Client]) -> None:
    bridge = bridge_subscriber(clients, broker.port)
    dev1 = client(clients, broker.port, "dev-1", registry["dev-1"])
    assert dev1.connect()

    assert dev1.publish(topic("m1", "s1", "dev-1"), b"own") == 0
    assert dev1.publish(topic("m1", "s2", "dev-2"), b"forged") == NOT_AUTHORIZED
    assert dev1.publish(topic("m2", "s1", "dev-1"), b"wrong market") == NOT_AUTHORIZED
    assert dev1.publish("rt/v1/markets/m1/entry/e1/certificates", b"cert") == NOT_AUTHORIZED

    wait_for(lambda: bridge.messages, timeout=5, what="the device's own reading at the bridge")
    time.sleep(0.3)
    assert bridge.messages == [(topic("m1", "s1", "dev-1"), b"own")]


def test_device_subscribes_to_nothing(broker: Mosquitto, registry: dict[str, str], clients: list[Client]) -> None:
    bridge = bridge_subscriber(clients, broker.port)
    spy = client(clients, broker.port, "dev-1", registry["dev-1"])
    assert spy.connect()
    spy.subscribe("#")
    spy.subscribe(f"$share/g/{FILTERS[0]}")
    dev2 = client(clients, broker.port, "dev-2", registry["dev-2"])
    assert dev2.connect()
    assert dev2.publish(topic("m1", "s2", "dev-2"), b"reading") == 0
    wait_for(lambda: bridge.messages, timeout=5, what="dev-2's reading at the bridge")
    time.sleep(0.3)
    assert spy.messages == []


def test_wrong_password_and_anonymous_are_refused(broker: Mosquitto, registry: dict[str, str],
                                                  clients: list[Client]) -> None:
    assert not client(clients, broker.port, "dev-1", registry["dev-2"]).connect()
    assert not client(clients, broker.port, None, None).connect()
    assert not client(clients, broker.port, BRIDGE_USER, "guess").connect()


def test_revoked_device_is_refused_after_reload(broker: Mosquitto, conn: Connection, files: MosquittoFiles,
                                                registry: dict[str, str], clients: list[Client]) -> None:
    bridge = bridge_subscriber(clients, broker.port)
    live = client(clients, broker.port, "dev-1", registry["dev-1"])
    assert live.connect()
    assert live.publish(topic("m1", "s1", "dev-1"), b"before") == 0

    assert revoke_device(conn, "dev-1", "test") is not None
    conn.commit()
    assert write_mosquitto_files(conn, files, FILTERS) == 2
    assert "dev-1" not in files.password_file.read_text()  # type: ignore[union-attr]
    broker.reload()

    # Mosquitto 2.0 drops the session that was open, and refuses a new connection.
    assert live.disconnected.wait(3.0), "the revoked device's open session survived the reload"
    assert not client(clients, broker.port, "dev-1", registry["dev-1"]).connect()
    # Everyone else carries on, on the same broker process.
    dev2 = client(clients, broker.port, "dev-2", registry["dev-2"])
    assert dev2.connect()
    assert dev2.publish(topic("m1", "s2", "dev-2"), b"still here") == 0
    wait_for(lambda: len(bridge.messages) >= 2, timeout=5, what="dev-2's reading after the reload")
    assert [m[1] for m in bridge.messages] == [b"before", b"still here"]


def test_reinstated_device_needs_its_new_password(broker: Mosquitto, conn: Connection, files: MosquittoFiles,
                                                  registry: dict[str, str], clients: list[Client]) -> None:
    revoke_device(conn, "dev-2", "test")
    again = add_device(conn, "m1", "s2", "dev-2", "test")
    conn.commit()
    write_mosquitto_files(conn, files, FILTERS)
    broker.reload()
    assert not client(clients, broker.port, "dev-2", registry["dev-2"]).connect()
    assert client(clients, broker.port, "dev-2", again.password).connect()


def test_production_config_runs_on_mosquitto_2(tmp_path: Path, files: MosquittoFiles, registry: dict[str, str],
                                              clients: list[Client]) -> None:
    """deploy/mosquitto/production.conf with only its paths and ports moved: accounts on, health listener open."""
    port, health = free_port(), free_port()
    conf = (ROOT / "deploy/mosquitto/production.conf").read_text()
    conf = (conf.replace("/mosquitto/auth/passwd", str(files.password_file))
            .replace("/mosquitto/auth/acl", str(files.acl_file))
            .replace("/mosquitto/config/health.acl", str(ROOT / "deploy/mosquitto/health.acl"))
            .replace("/mosquitto/data/", f"{tmp_path}/")
            .replace("listener 1883\n", f"listener {port} 127.0.0.1\n")
            .replace("listener 1880 127.0.0.1", f"listener {health} 127.0.0.1")
            .replace("log_dest stdout", "log_dest stderr"))
    assert str(port) in conf and str(health) in conf
    path = tmp_path / "production.conf"
    path.write_text(conf + "\nuser root\n")
    binary = str(MOSQUITTO_BIN if MOSQUITTO_BIN.exists() else shutil.which("mosquitto"))
    proc = subprocess.Popen([binary, "-c", str(path)], stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _accepts(port), timeout=5, interval=0.05, what="production mosquitto")
        assert not client(clients, port, None, None).connect()
        dev1 = client(clients, port, "dev-1", registry["dev-1"])
        assert dev1.connect()
        assert dev1.publish(topic("m1", "s2", "dev-2"), b"forged") == NOT_AUTHORIZED
        if shutil.which("mosquitto_sub"):  # the docker-compose health check, as written there
            probe = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(health), "-t",
                                    "$SYS/broker/uptime", "-C", "1", "-W", "5"], check=False, capture_output=True,
                                   timeout=10)
            assert probe.returncode == 0, probe.stderr
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert b"Error" not in err, err.decode(errors="replace")


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
