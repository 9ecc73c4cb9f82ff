from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator

import pytest

from runtime.ports import PortTakenError, ensure_free, free_port, is_free, wait_for_port


@pytest.fixture
def listener() -> Iterator[int]:
    """A port with a live listener on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def test_taken_port_error_names_the_setting(listener: int) -> None:
    with pytest.raises(PortTakenError) as err:
        ensure_free("127.0.0.1", listener, "RT_API_PORT")
    # the listener is this test process: the message names it
    assert str(err.value).startswith(f"port {listener} on 127.0.0.1 is taken by pid {os.getpid()} (")
    assert str(err.value).endswith("; set RT_API_PORT to a free port")


def test_port_bound_on_all_interfaces_is_taken_for_loopback() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        assert not is_free("127.0.0.1", port)


def test_free_port_passes_the_check() -> None:
    port = free_port()
    ensure_free("127.0.0.1", port, "RT_PG_PORT")
    assert is_free("127.0.0.1", port)


def test_wait_for_port_returns_once_listening(listener: int) -> None:
    assert wait_for_port("127.0.0.1", listener, timeout=1.0) < 1.0


def test_wait_for_port_times_out() -> None:
    port = free_port()
    with pytest.raises(TimeoutError, match=str(port)):
        wait_for_port("127.0.0.1", port, timeout=0.1)


def test_wait_for_port_fails_fast_when_the_server_exits() -> None:
    proc = subprocess.Popen(["sh", "-c", "exit 3"])
    proc.wait()
    with pytest.raises(ChildProcessError, match="code 3"):
        wait_for_port("127.0.0.1", free_port(), timeout=5.0, process=proc)
