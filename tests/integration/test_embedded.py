"""The embedded components start, serve and stop cleanly; the project's Mosquitto config queues."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
import psycopg2
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from paho.mqtt.enums import CallbackAPIVersion

from runtime.embedded import (
    ComponentError,
    EmbeddedKafka,
    EmbeddedMqtt,
    EmbeddedPostgres,
    ManagedProcess,
    give_to_pg_user,
    pg_system_user,
)
from runtime.kafka_topics import TopicSetupError, ensure_topics
from runtime.mosquitto import Mosquitto
from runtime.ports import PortTakenError, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="rt-test-embedded-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def assert_gone(pid: int | None) -> None:
    assert pid is not None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


# ---------------------------------------------------------------- ports


@pytest.mark.parametrize(
    ("make", "setting"),
    [
        (lambda d, p: EmbeddedPostgres(d / "pg", p, log_dir=d), "RT_PG_PORT"),
        (lambda d, p: EmbeddedMqtt(p, d), "RT_MQTT_PORT"),
        (lambda d, p: EmbeddedKafka(p, d), "RT_KAFKA_PORT"),
        (lambda d, p: Mosquitto(p, d), "RT_MQTT_PORT"),
    ],
)
def test_taken_port_is_refused_before_starting(
    workdir: Path, make: Callable[[Path, int], ManagedProcess], setting: str
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        component = make(workdir, sock.getsockname()[1])
        with pytest.raises(PortTakenError, match=setting):
            component.start()
    assert not component.running


# ---------------------------------------------------------------- PostgreSQL


def test_a_component_that_dies_at_start_reports_its_log(workdir: Path) -> None:
    data = workdir / "pg"
    data.mkdir()
    give_to_pg_user(data)
    (data / "PG_VERSION").write_text("18\n")  # looks initialised (no initdb), yet holds no cluster
    pg = EmbeddedPostgres(data, free_port(), log_dir=workdir)
    with pytest.raises(ComponentError) as err:
        pg.start()
    assert "postgres did not start" in str(err.value)
    assert "postgresql.conf" in str(err.value)  # the server's own explanation, from the log tail
    assert not pg.running
    assert not pg.pid_path.exists()



def query_one(dsn: str, statement: str) -> object:
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement)
            row = cur.fetchone()
            assert row is not None
            return row[0]
    finally:
        conn.close()


def test_postgres_18_starts_keeps_its_data_and_stops(workdir: Path) -> None:
    pg = EmbeddedPostgres(workdir / "pg", free_port(), log_dir=workdir)
    with pg:
        assert "PostgreSQL 18" in str(query_one(pg.dsn, "select version()"))
        assert query_one(pg.dsn, "select current_database()") == "rapidtrace"
        assert query_one(pg.dsn, "show server_encoding") == "UTF8"
        query_one(pg.dsn, "create table kept (x int); insert into kept values (42); select 1")
        pid = pg.pid
    assert_gone(pid)
    assert not (workdir / "pg" / "postmaster.pid").exists()
    with pg:  # same data directory: no initdb, the table is still there
        assert query_one(pg.dsn, "select x from kept") == 42
    assert "fast shutdown" in pg.log_path.read_text()


def test_postgres_starts_over_a_stale_postmaster_pid(workdir: Path) -> None:
    pg = EmbeddedPostgres(workdir / "pg", free_port(), log_dir=workdir).start()
    assert pg.pid is not None
    postmaster = psutil.Process(pg.pid)
    children = postmaster.children()
    postmaster.kill()  # a killed run: postmaster.pid stays behind
    pg.stop()
    psutil.wait_procs(children, timeout=10)  # its backends notice and exit
    # the worst case: the recorded pid now belongs to another live process of the same user,
    # which PostgreSQL itself takes for a running postmaster
    squatter = subprocess.Popen(["sleep", "30"], user=pg_system_user())
    try:
        pid_file = workdir / "pg" / "postmaster.pid"
        lines = pid_file.read_text().split("\n")
        pid_file.write_text("\n".join([str(squatter.pid), *lines[1:]]))
        with pg:
            assert query_one(pg.dsn, "select 1") == 1
        assert squatter.poll() is None  # the unrelated process was left alone
    finally:
        squatter.kill()
        squatter.wait()


def test_orphaned_postgres_from_an_earlier_run_is_stopped(workdir: Path) -> None:
    port = free_port()
    first = EmbeddedPostgres(workdir / "pg", port, log_dir=workdir).start()
    orphan = first.pid
    # A new process (e.g. `rapidtrace up` after its parent was killed) on the same directories.
    second = EmbeddedPostgres(workdir / "pg", port, log_dir=workdir)
    try:
        second.start()
        assert_gone(orphan)
        assert query_one(second.dsn, "select 1") == 1
    finally:
        second.stop()
        first.stop()


# ---------------------------------------------------------------- MQTT


class Subscriber:
    """A paho MQTT 3.1.1 client that records the payloads it receives."""

    def __init__(self, port: int, client_id: str, *, clean: bool = True, username: str | None = None,
                 manual_ack: bool = False) -> None:
        self.received: list[mqtt.MQTTMessage] = []
        self.connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv311, clean_session=clean, manual_ack=manual_ack)
        if username:
            self.client.username_pw_set(username, "unused")
        self.client.on_connect = lambda *a: self.connected.set()
        self.client.on_message = lambda _c, _u, msg: self.received.append(msg)
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(5), "no CONNACK"

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(5), "no SUBACK"

    def wait_for(self, count: int, timeout: float = 10) -> int:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return len(self.received)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish(port: int, topic: str, count: int, *, username: str | None = None) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    if username:
        client.username_pw_set(username, "unused")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = [client.publish(topic, f"m{i}".encode(), qos=1) for i in range(count)]
        for info in infos:
            info.wait_for_publish(10)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def test_amqtt_delivers_qos1(workdir: Path) -> None:
    with EmbeddedMqtt(free_port(), workdir) as broker:
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
        sub = Subscriber(broker.port, "sub-1")
        try:
            sub.subscribe("rt/test/#")
            publish(broker.port, "rt/test/a", 1)
            assert sub.wait_for(1) == 1
            assert sub.received[0].payload == b"m0"
            assert sub.received[0].qos == 1
        finally:
            sub.close()
        pid = broker.pid
    assert_gone(pid)


def test_amqtt_without_anonymous_keeps_a_persistent_session_backlog(workdir: Path) -> None:
    with EmbeddedMqtt(free_port(), workdir, allow_anonymous=False) as broker:
        sub = Subscriber(broker.port, "bridge-1", clean=False, username="bridge")
        sub.subscribe("rt/test/#")
        sub.close()
        publish(broker.port, "rt/test/a", 50, username="device")
        back = Subscriber(broker.port, "bridge-1", clean=False, username="bridge")
        try:
            assert back.wait_for(50) == 50
        finally:
            back.close()


# ---------------------------------------------------------------- Kafka


def test_tansu_makes_topics_and_carries_a_record(workdir: Path) -> None:
    with EmbeddedKafka(free_port(), workdir) as kafka:
        assert ensure_topics(kafka.bootstrap, ["rt.test.a", "rt.test.b"], partitions=3, replication=1) == {
            "rt.test.a": 3, "rt.test.b": 3,
        }
        with KafkaAdminClient(bootstrap_servers=kafka.bootstrap) as admin:
            described = admin.describe_topics(["rt.test.a"])
        assert [p["leader_id"] >= 0 for p in described[0]["partitions"]] == [True] * 3

        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
        meta = producer.send("rt.test.a", key=b"station-1", value=b"hello").get(timeout=10)
        producer.close()
        consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False,
                                 consumer_timeout_ms=5000)
        consumer.assign([TopicPartition("rt.test.a", meta.partition)])
        consumer.seek_to_beginning()
        records = [next(consumer)]
        consumer.close()
        assert (records[0].key, records[0].value) == (b"station-1", b"hello")
        pid = kafka.pid
    assert_gone(pid)


def test_ensure_topics_waits_for_a_starting_broker(workdir: Path) -> None:
    kafka = EmbeddedKafka(free_port(), workdir)
    starter = threading.Timer(1.0, kafka.start)
    starter.start()
    try:
        assert ensure_topics(kafka.bootstrap, ["late"], partitions=2, replication=1, timeout_s=20) == {"late": 2}
    finally:
        starter.join()
        kafka.stop()


def test_ensure_topics_gives_up_with_a_retriable_error() -> None:
    with pytest.raises(TopicSetupError) as err:
        ensure_topics(f"127.0.0.1:{free_port()}", ["t"], partitions=1, replication=1, timeout_s=1)
    assert err.value.retriable


def test_ensure_topics_rejects_zero_partitions() -> None:
    with pytest.raises(ValueError, match="partitions"):
        ensure_topics("127.0.0.1:9", ["t"], partitions=0, replication=1)


# ---------------------------------------------------------------- Mosquitto


def test_mosquitto_queues_past_the_default_limit_for_an_offline_subscriber(workdir: Path) -> None:
    with Mosquitto(free_port(), workdir) as broker:
        config = broker.config_path.read_text()
        assert "max_queued_messages 0" in config
        assert f"listener {broker.port} 127.0.0.1" in config
        sub = Subscriber(broker.port, "bridge-q", clean=False)
        sub.subscribe("rt/test/#")
        sub.close()
        publish(broker.port, "rt/test/a", 1500)  # Mosquitto's default would drop all but 1000
        back = Subscriber(broker.port, "bridge-q", clean=False)
        try:
            assert back.wait_for(1500) == 1500
        finally:
            back.close()
        assert "dropped" not in broker.log_path.read_text()


def test_mosquitto_lets_many_unacknowledged_messages_fly(workdir: Path) -> None:
    with Mosquitto(free_port(), workdir) as broker:
        sub = Subscriber(broker.port, "bridge-slow", manual_ack=True)
        try:
            sub.subscribe("rt/test/#")
            publish(broker.port, "rt/test/a", 300)
            # nothing acknowledged yet: the default max_inflight_messages (20) would stop at 20
            assert sub.wait_for(300) == 300
        finally:
            sub.close()


def connack_code(port: int, username: str | None = None, password: str | None = None) -> object:
    codes: list[object] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    if username:
        client.username_pw_set(username, password)

    def on_connect(c: mqtt.Client, _u: object, _f: object, rc: object, _p: object) -> None:
        codes.append(rc)
        c.disconnect()  # also stops paho from retrying after a refusal

    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        deadline = time.monotonic() + 5
        while not codes and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        client.loop_stop()
    assert codes, "no CONNACK"
    return codes[0]


def test_mosquitto_reload_applies_new_access_rules(workdir: Path) -> None:
    with Mosquitto(free_port(), workdir) as broker:
        assert connack_code(broker.port) == 0  # the project config allows anonymous clients
        passwords = workdir / "passwd"
        subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "dev-1", "s3cret"], check=True)
        passwords.chmod(0o600)
        broker.reload(f"allow_anonymous false\npassword_file {passwords}\n")
        assert connack_code(broker.port) != 0
        assert connack_code(broker.port, "dev-1", "wrong") != 0
        assert connack_code(broker.port, "dev-1", "s3cret") == 0
