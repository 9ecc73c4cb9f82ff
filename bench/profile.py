"""``python -m bench.profile``: where the bridge's and the consumers' CPU goes, on a real stack, flat out.

Starts a bench stack (its own Mosquitto and Tansu, a scratch database), runs the bridge and the
given consumers as production runs them, publishes readings flat out, samples every process with
py-spy (``pip install py-spy``; needs ptrace, i.e. root or ``CAP_SYS_PTRACE``) for the whole
publish, and prints, per process, its CPU per reading and the functions that took the most samples
(inclusive, and self time).  The raw collapsed stacks stay in the work directory for a flame graph.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.e2e import DEFAULT_ADMIN_DSN, _collect, _messages, _publish_flat_out, _stored_count, _wait_ready
from bench.stack import BenchStack


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"
    name, _, where = frame.partition(" (")
    path = where.split(":")[0]
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if parts else path
    return f"{name} ({short})"


def summarise(raw: Path, top: int) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";") if f and not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    return total, inclusive.most_common(top), own.most_common(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=int, default=60_000)
    parser.add_argument("--consumers", nargs="+", default=["readings", "deadletters"],
                        help="consumers of the consumer process (the deployment's by default; "
                             "store deadletters for the store alone)")
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_DSN)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--rate", type=int, default=97, help="py-spy samples per second")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    work = Path(tempfile.mkdtemp(prefix="rt-profile-"))
    stack = BenchStack.start(args.database_url, work, "profile")
    stack.spawn("bridge", "ingest")
    stack.spawn("consumer", "consume", *args.consumers)
    spies: dict[str, subprocess.Popen[bytes]] = {}
    try:
        assert stack.settings.mqtt_url and stack.settings.database_url
        _wait_ready(stack)
        messages = _messages(args.readings, seed=3)
        base = _stored_count(stack.settings.database_url)
        cpu0 = {n: sum(psutil.Process(p.pid).cpu_times()[:2]) for n, p in stack.children.items()}
        for name, proc in stack.children.items():
            spies[name] = subprocess.Popen(
                [py_spy, "record", "--pid", str(proc.pid), "--format", "raw", "--rate", str(args.rate),
                 "--nonblocking", "--output", str(work / f"{name}.stacks")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        sent, _ = _publish_flat_out(stack.settings.mqtt_url, messages, 1, work)
        flat = _collect(stack.settings.database_url, sent, base)
        if {"flagger", "readings"} & set(args.consumers):  # they judge: wait for the verdicts too
            while _stored_count(stack.settings.database_url, "verdicts") < base + len(sent):
                time.sleep(0.5)
        cpu = {n: sum(psutil.Process(p.pid).cpu_times()[:2]) - cpu0[n] for n, p in stack.children.items()}
    finally:
        for spy in spies.values():
            spy.send_signal(2)  # SIGINT: py-spy writes its output
        for spy in spies.values():
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
        stack.stop()
    n = flat["stored"]
    print(f"{n:,} readings stored in {flat['seconds']}s ({flat['readings_per_s']:,.0f}/s), lost {flat['lost']}, "
          f"doubled {flat['doubled']}; stacks in {work}")
    for name in stack.children:
        print(f"\n== {name}: {cpu[name]:.1f} CPU s, {cpu[name] / max(n, 1) * 1e6:.0f} µs a reading "
              "(py-spy adds a little)")
        raw = work / f"{name}.stacks"
        if not raw.exists():
            print("  (no py-spy output)")
            continue
        total, inclusive, own = summarise(raw, args.top)
        print(f"  {total} samples; inclusive:")
        for fn, count in inclusive:
            print(f"  {count / max(total, 1):6.1%}  {fn}")
        print("  self:")
        for fn, count in own:
            print(f"  {count / max(total, 1):6.1%}  {fn}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
