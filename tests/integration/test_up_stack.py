"""``rapidtrace up`` as a user runs it, everything embedded, treated as a careless user and a failing machine would.

One data directory goes through: a start, Tansu killed under load, PostgreSQL and Mosquitto killed,
dead letters, ``up`` itself SIGKILLed, a second start (same token, new dead letters stored), and a
taken port.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
from kafka import KafkaAdminClient

from runtime.mosquitto import find_mosquitto
from runtime.ports import free_port
from tests.helpers import encode, publish, reading_payload, reading_topic, rows, scalar, wait_for

pytestmark = pytest.mark.integration


class Up:
    def __init__(self, data_dir: Path, ports: dict[str, int]) -> None:
        self.data_dir, self.ports = data_dir, ports
        self.out = data_dir.parent / f"up-{time.monotonic_ns()}.out"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RT_")}
        env.update({"RT_DATA_DIR": str(data_dir), "RT_EMBEDDED_MQTT": "mosquitto",
                    **{f"RT_{name.upper()}": str(port) for name, port in ports.items()}})
        bridge_log = data_dir / "logs" / "bridge.log"
        self._bridge_log_from = bridge_log.stat().st_size if bridge_log.exists() else 0
        with self.out.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "runtime.cli", "up"], env=env, stdout=out,
                                         stderr=subprocess.STDOUT)

    @property
    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_started(self, timeout: float = 120) -> None:
        wait_for(lambda: "started in" in self.text or self.proc.poll() is not None, timeout=timeout,
                 what="rapidtrace up to start")
        assert "started in" in self.text, self.text[-3000:]
        log = self.data_dir / "logs" / "bridge.log"
        wait_for(lambda: "MQTT connected" in log.read_text(errors="replace")[self._bridge_log_from:], timeout=60,
                 what="the bridge to connect")
        time.sleep(1)  # its SUBACK: a message published before it is subscribed has no subscriber

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.ports['pg_port']}/rapidtrace"

    @property
    def mqtt(self) -> str:
        return f"mqtt://127.0.0.1:{self.ports['mqtt_port']}"

    def api(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.ports['api_port']}{path}", timeout=10)

    def _pid_files(self) -> list[Path]:
        return [*(self.data_dir / "logs").glob("*.pid"), *(self.data_dir / "mosquitto").glob("*.pid")]

    def pid(self, name: str) -> int:
        (path,) = [p for p in self._pid_files() if p.stem == name]
        return int(json.loads(path.read_text())["pid"])

    def pids(self) -> list[int]:
        return [int(json.loads(p.read_text())["pid"]) for p in self._pid_files()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(60)


def _stored(up: Up, ids: list[str]) -> int:
    return int(scalar(up.dsn, "SELECT count(*) FROM readings WHERE reading_id::text = ANY(%s)", [ids]))


def _publish_all(up: Up, payloads: list[dict]) -> list[str]:
    publish(up.mqtt, "5", [(reading_topic(), encode(p)) for p in payloads], timeout=60)
    return [p["reading_id"] for p in payloads]


def _malformed(up: Up, count: int, tag: str) -> None:
    publish(up.mqtt, "5", [(reading_topic(), f"not json {tag} {i}".encode()) for i in range(count)])


@pytest.fixture
def stack_dir(tmp_path: Path) -> Path:
    if find_mosquitto() is None:
        pytest.skip("needs a Mosquitto binary for the embedded MQTT broker")
    return tmp_path / "data"


def test_the_embedded_stack_survives_crashes_restarts_and_a_lost_kafka_log(stack_dir: Path) -> None:
    ports = {name: free_port() for name in ("api_port", "mqtt_port", "kafka_port", "pg_port")}
    up = Up(stack_dir, ports)
    try:
        up.wait_started()
        token_file = stack_dir / "local-token.json"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        first_token = json.loads(token_file.read_text())["token"]
        _malformed(up, 5, "run1")
        wait_for(lambda: scalar(up.dsn, "SELECT count(*) FROM deadletters") == 5, timeout=60, what="5 dead letters")

        # --- Tansu SIGKILLed under load: everything published once it is back is stored
        stop_load = threading.Event()
        published: list[str] = []

        def load() -> None:
            while not stop_load.is_set():
                published.extend(_publish_all(up, [reading_payload() for _ in range(20)]))
                time.sleep(0.05)

        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        wait_for(lambda: len(published) >= 400, timeout=60, what="load before the Kafka crash")
        os.kill(up.pid("tansu"), signal.SIGKILL)
        wait_for(lambda: "tansu restarted" in up.text, timeout=60, what="up to restart Tansu")
        back_at = len(published)
        time.sleep(3)
        stop_load.set()
        loader.join(60)
        after = published[back_at:]
        assert after
        wait_for(lambda: _stored(up, after) == len(after), timeout=90,
                 what=f"all {len(after)} readings published after Tansu came back")
        assert "KAFKA LOG RESET" in up.text
        health = wait_for(lambda: (r := up.api("/healthz")).status_code == 503 and r, timeout=60,
                          what="/healthz to report the reset")
        assert health.json()["dependencies"]["kafka_log"]["state"] == "reset"
        assert "rt_kafka_log_resets_total" in up.api("/metrics").text
        admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{ports['kafka_port']}")
        topics = {t["name"]: len(t["partitions"]) for t in admin.describe_topics()}
        admin.close()
        assert topics["rt.readings.v1"] == topics["rt.deadletter.v1"] == 3, topics

        # --- PostgreSQL and Mosquitto killed: restarted by up, nothing acknowledged is lost
        bridge_log = stack_dir / "logs" / "bridge.log"
        for name in ("postgres", "mosquitto"):
            connects = bridge_log.read_text().count("MQTT connected")
            os.kill(up.pid(name), signal.SIGKILL)
            wait_for(lambda n=name: f"{n} restarted" in up.text, timeout=90, what=f"up to restart {name}")
            assert f"{name} died (killed by SIGKILL)" in up.text
            # published at once, before the bridge is back: the restored session queues them for it
            ids = _publish_all(up, [reading_payload() for _ in range(50)])
            if name == "mosquitto":
                wait_for(lambda c=connects: bridge_log.read_text().count("MQTT connected") > c, timeout=30,
                         what="the bridge to reconnect")
            wait_for(lambda i=ids: _stored(up, i) == 50, timeout=90, what=f"readings after {name} came back")

        # --- up SIGKILLed: no child survives 5 s
        children = up.pids()
        up.proc.kill()
        up.proc.wait(10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(psutil.pid_exists(p) and
                                                  psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                                                  for p in children):
            time.sleep(0.2)
        survivors = [p for p in children if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
        assert not survivors, f"children outlived a killed up: {survivors}"

        # --- the next up starts cleanly on the same data dir, keeps the token, stores new dead letters
        up = Up(stack_dir, ports)
        up.wait_started()
        assert json.loads(token_file.read_text())["token"] == first_token
        assert first_token in up.text
        live = scalar(up.dsn, "SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL")
        assert live == 1
        assert up.api("/v1/deadletters").status_code == 401
        _malformed(up, 7, "run2")
        wait_for(lambda: scalar(up.dsn, "SELECT count(*) FROM deadletters") == 12, timeout=60,
                 what="the 7 new dead letters of the second run")
        listed = httpx.get(f"http://127.0.0.1:{ports['api_port']}/v1/deadletters",
                           headers={"Authorization": f"Bearer {first_token}"}, params={"limit": 100}).json()
        assert len(listed["items"]) == 12
        assert rows(up.dsn, "SELECT count(DISTINCT deadletter_id) FROM deadletters") == [(12,)]

        # --- Ctrl-C twice: stops at once, nothing left running
        children = up.pids()
        up.proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        up.proc.send_signal(signal.SIGINT)
        assert up.proc.wait(30) == 0
        assert "rapidtrace: stopped" in up.text
        assert not [p for p in children if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    finally:
        up.stop()


def test_a_taken_port_is_one_line_naming_the_setting_and_the_holder(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import socket,time; s=socket.socket(); "
                               "s.bind(('127.0.0.1', 0)); s.listen(); print(s.getsockname()[1], flush=True); "
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        port = int(holder.stdout.readline())
        env = {k: v for k, v in os.environ.items() if not k.startswith("RT_")}
        env.update({"RT_DATA_DIR": str(tmp_path / "data"), "RT_API_PORT": str(port)})
        result = subprocess.run([sys.executable, "-m", "runtime.cli", "up"], check=False, env=env, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 2
        lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        assert len(lines) == 1, lines
        assert "RT_API_PORT" in lines[0] and f"pid {holder.pid}" in lines[0] and "Traceback" not in lines[0]
    finally:
        holder.kill()
        holder.wait()
