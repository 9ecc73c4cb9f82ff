"""A Mosquitto broker child process with the project's configuration, for benchmarks and tests.

The configuration is ``deploy/mosquitto/mosquitto.conf`` plus a listener on ``127.0.0.1:PORT``,
persistence and the log in ``work_dir``, then ``extra_conf`` (e.g. ``password_file``/``acl_file``
lines for ACL tests; later options win, and they follow the listener line)::

    with Mosquitto(free_port(), tmp_path, extra_conf="allow_anonymous false\\n") as broker:
        ...
        broker.reload()  # SIGHUP: re-read password and ACL files
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from runtime.embedded import HOST, ManagedProcess

MOSQUITTO_BIN = Path("/usr/sbin/mosquitto")
PROJECT_CONF = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto" / "mosquitto.conf"


class Mosquitto(ManagedProcess):
    name = "mosquitto"
    setting_name = "RT_MQTT_PORT"
    start_timeout_s = 15.0

    def __init__(self, port: int, work_dir: Path, extra_conf: str = "") -> None:
        super().__init__(port, Path(work_dir).absolute())
        self.extra_conf = extra_conf

    @property
    def url(self) -> str:
        return f"mqtt://{HOST}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.log_dir / "mosquitto.conf"

    def _prepare(self) -> None:
        self.config_path.write_text(mosquitto_config(self.port, self.log_dir, self.extra_conf))

    def _command(self) -> list[str]:
        binary = find_mosquitto()
        if binary is None:
            raise FileNotFoundError(f"no mosquitto binary ({MOSQUITTO_BIN} or on PATH)")
        return [str(binary), "-c", str(self.config_path)]

    def reload(self, extra_conf: str | None = None) -> None:
        """Rewrite the configuration (when ``extra_conf`` is given) and send SIGHUP.

        Mosquitto re-reads password and ACL files and the options marked "reloaded on reload
        signal" in mosquitto.conf(5); listeners do not change.  Returns after a short pause,
        since the broker applies the signal asynchronously.
        """
        if not self.running or self.pid is None:
            raise RuntimeError("mosquitto is not running")
        if extra_conf is not None:
            self.extra_conf = extra_conf
            self.config_path.write_text(mosquitto_config(self.port, self.log_dir, self.extra_conf))
        os.kill(self.pid, signal.SIGHUP)
        time.sleep(0.2)


def find_mosquitto() -> Path | None:
    """The Mosquitto binary, or None when it is not installed (callers may fall back to amqtt)."""
    if MOSQUITTO_BIN.exists():
        return MOSQUITTO_BIN
    found = shutil.which("mosquitto")
    return Path(found) if found else None


def mosquitto_config(port: int, work_dir: Path, extra_conf: str = "") -> str:
    lines = [
        PROJECT_CONF.read_text(),
        "# --- added by runtime/mosquitto.py ---",
        # As root, Mosquitto switches to the `mosquitto` user before reading password/ACL files
        # and cannot read a test's 0600 files or write its work dir; it stays this process's user.
        "user root" if os.geteuid() == 0 else "",
        f"persistence_location {work_dir}/",
        "log_dest stderr",
        f"listener {port} {HOST}",
        extra_conf,
        "",
    ]
    return "\n".join(lines)
