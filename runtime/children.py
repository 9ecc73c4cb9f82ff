"""The Python children of ``rapidtrace up`` (API, consumers, bridge, fleet): spawn, stop, pause, pid files.

Each child gets ``PR_SET_PDEATHSIG`` = SIGKILL, so it dies with a killed ``up``; that loses nothing,
since the bridge acknowledges MQTT only after Kafka took a record and the consumers commit offsets
only after the database did.  Each writes ``<logs>/<name>.pid``; the next ``up`` stops a child that
an earlier one left (same pid, same command line) before starting its own.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from runtime.embedded import die_with_parent, stop_recorded, write_pid_file

log = logging.getLogger(__name__)


@dataclass
class Child:
    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    uses_kafka: bool = True
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid_path(self) -> Path:
        return self.log_path.with_suffix(".pid")

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "runtime.cli", *self.args]

    def stop_orphan(self) -> bool:
        return stop_recorded(self.pid_path, self.name, signal.SIGTERM, 10.0)

    def start(self) -> None:
        if self._log is not None:
            self._log.close()
        self._log = self.log_path.open("ab")
        self._log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(self.command)}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            self.command, env=self.env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGKILL),  # noqa: PLW1509 (only a prctl call; see die_with_parent)
        )
        write_pid_file(self.pid_path, self.proc.pid, self.command)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_status(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    def pause(self) -> None:
        """SIGSTOP: it sends nothing (to Kafka) until :meth:`resume`."""
        if self.alive():
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.alive():
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.kill()

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s ignored SIGTERM for %.0fs; killing it", self.name, timeout)
                self.proc.kill()
                self.proc.wait()
        self.pid_path.unlink(missing_ok=True)
        if self._log is not None:
            self._log.close()
            self._log = None
