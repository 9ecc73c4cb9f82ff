"""TCP port checks for the embedded stack: is a port free, find a free one, wait for a listener."""

from __future__ import annotations

import socket
import subprocess
import time

import psutil

from schemas.errors import SetupError


class PortTakenError(SetupError):
    """A configured port is already in use; the message names the setting that moves it."""


def is_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` (sockets in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR ignores TIME_WAIT leftovers of a just-stopped server but still
        # fails against a live listener, which is exactly what the server itself will see.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_holder(port: int) -> str | None:
    """``"pid 123 (name: cmdline)"`` of the process listening on TCP ``port``, where visible."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            try:
                proc = psutil.Process(conn.pid)
                command = " ".join(proc.cmdline())[:120]
                return f"pid {conn.pid} ({proc.name()}: {command})"
            except psutil.Error:
                return f"pid {conn.pid}"
    return None


def ensure_free(host: str, port: int, setting_name: str) -> None:
    """Raise :class:`PortTakenError` naming ``setting_name`` and the holder when ``host:port`` is in use."""
    if not is_free(host, port):
        holder = port_holder(port)
        held = f" by {holder}" if holder else ""
        raise PortTakenError(f"port {port} on {host} is taken{held}; set {setting_name} to a free port")


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel considers free right now (another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


def accepts_connections(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(
    host: str,
    port: int,
    timeout: float,
    *,
    process: subprocess.Popen[bytes] | None = None,
) -> float:
    """Block until ``host:port`` accepts a TCP connection; return the seconds waited.

    Raises :class:`TimeoutError` after ``timeout`` seconds, or :class:`ChildProcessError`
    at once when ``process`` (the server expected to listen) exits first.
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        if accepts_connections(host, port):
            return time.monotonic() - started
        if process is not None and process.poll() is not None:
            raise ChildProcessError(
                f"process {process.pid} exited with code {process.returncode}"
                f" before listening on {host}:{port}"
            )
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nothing accepted connections on {host}:{port} within {timeout:.1f}s")
        time.sleep(0.05)
