"""A publisher process for the benchmark: publishes a JSONL file of [topic, reading_id, payload] flat out,
then prints ``{reading_id: sent_time}`` as JSON on stdout."""

from __future__ import annotations

import json
import sys

from simulators.publisher import Publisher


def main(url: str, path: str) -> int:
    with open(path) as f:
        messages = [json.loads(line) for line in f]
    pub = Publisher(url, "5", max_outstanding=2000).connect()
    for topic, reading_id, payload in messages:
        pub.publish(topic, payload.encode(), reading_id)
    stats = pub.close(timeout_s=300)
    if stats.unacked:
        print(f"{stats.unacked} messages never acknowledged", file=sys.stderr)
        return 1
    json.dump(pub.sent_at, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
