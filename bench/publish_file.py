"""A publisher process for the benchmark: publishes a JSONL file of [topic, reading_id, payload] flat out,
then prints ``{"sent_at": {reading_id: sent_time}, "cpu_s": …}`` as JSON on stdout (``cpu_s``: this
process's CPU from the first publish to the last acknowledgement, the file's parsing left out)."""

from __future__ import annotations

import json
import sys
import time

from simulators.publisher import Publisher


def main(url: str, path: str) -> int:
    with open(path) as f:
        messages = [json.loads(line) for line in f]
    pub = Publisher(url, "5", max_outstanding=2000).connect()
    cpu0 = time.process_time()
    for topic, reading_id, payload in messages:
        pub.publish(topic, payload.encode(), reading_id)
    stats = pub.close(timeout_s=300)
    cpu = time.process_time() - cpu0
    if stats.unacked:
        print(f"{stats.unacked} messages never acknowledged", file=sys.stderr)
        return 1
    json.dump({"sent_at": pub.sent_at, "cpu_s": round(cpu, 3)}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
