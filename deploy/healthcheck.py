"""Container health probes for docker-compose.yml (standard library only, no curl in the image).

    python healthcheck.py http URL            healthy when GET URL answers 2xx
    python healthcheck.py connected PORT...   healthy when this container holds an ESTABLISHED
                                              TCP connection to each remote PORT

The second one fits the bridge and the consumers, which serve no HTTP: a bridge
that lost its MQTT or Kafka connection, or a consumer that lost Kafka or the
database, turns unhealthy (and is restarted by its restart policy).
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

ESTABLISHED = "01"


def remote_ports(tables: tuple[str, ...] = ("/proc/net/tcp", "/proc/net/tcp6")) -> set[int]:
    """Remote ports of this network namespace's established TCP connections."""
    ports: set[int] = set()
    for table in tables:
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 3 and fields[3] == ESTABLISHED:
                ports.add(int(fields[2].rsplit(":", 1)[1], 16))
    return ports


def check_connected(ports: list[int]) -> str | None:
    missing = sorted(set(ports) - remote_ports())
    return f"no established connection to port(s) {missing}" if missing else None


def check_http(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=4) as response:  # noqa: S310 (fixed local URL)
            return None if 200 <= response.status < 300 else f"HTTP {response.status}"
    except Exception as exc:
        return f"{url}: {exc}"


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "http":
        problem = check_http(argv[1])
    elif len(argv) >= 2 and argv[0] == "connected" and all(a.isdigit() for a in argv[1:]):
        problem = check_connected([int(a) for a in argv[1:]])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
