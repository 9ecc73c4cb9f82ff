"""``rapidtrace bench``: the whole path, flat out, on real components, with figures.

Starts its own Mosquitto (the project's broker config), Tansu, and a scratch
database on the given PostgreSQL server; runs the bridge and the storage
consumers as separate processes exactly as production does; then:

1. components alone (MQTT publish→subscribe, Kafka produce→consume, PostgreSQL insert),
2. a latency phase at a fixed rate (default 1,000 readings/s): publish → row p50/p95/p99,
3. a throughput phase flat out (default 60 s): readings/s sustained end to end,

and counts readings lost (acknowledged by the broker, never stored) and
doubled (stored twice) in every phase, plus each process's peak RSS.

``--flagger-cost`` instead runs the flat-out phase twice on fresh stacks, without
and with the flagger process, and prints what flagging costs: with the flagger a
reading counts as through only once it is stored *and* judged.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

from bench.stack import BenchStack
from bench.stats import RssSampler, backend_cpu, percentiles
from runtime.embedded import EmbeddedKafka
from runtime.mosquitto import Mosquitto
from runtime.ports import free_port
from simulators.fleet import Fleet, FleetConfig
from simulators.progress import open_progress
from simulators.publisher import Publisher, RateLimiter, encode
from storage.db import connect

DEFAULT_ADMIN_DSN = os.environ.get("RT_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=60.0,
                        help="flat-out phase length, seconds (>= 60 for the record)")
    parser.add_argument("--rate", type=float, default=1000.0, help="latency phase rate, readings/s")
    parser.add_argument("--latency-duration", type=float, default=20.0, help="latency phase length, seconds")
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_DSN,
                        help="PostgreSQL server (a scratch database is made)")
    parser.add_argument("--flagger-cost", action="store_true",
                        help="flat out without, then with the flagger: what flagging costs end to end")
    parser.add_argument("--judging", choices=("together", "separate"), default="together",
                        help="with the flagger: store and judge in one consumer group (consumers/store_and_judge.py, "
                             "the deployment's) or the flagger as its own group and process")
    parser.add_argument("--no-flagger-phases", action="store_true",
                        help="skip the flat-out phase with the flagger and the SSE phase")
    parser.add_argument("--sse-duration", type=float, default=30.0,
                        help="positive -> SSE phase at --rate readings/s, seconds (0 skips it)")
    parser.add_argument("--skip-components", action="store_true", help="skip the components-alone figures")
    parser.add_argument("--publishers", type=int, default=1,
                        help="publisher processes in the flat-out phase (one outruns the pipeline; more steal its CPU)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")


def _start_stack(args: argparse.Namespace, work: Path, with_flagger: bool) -> BenchStack:
    stack = BenchStack.start(args.database_url, work, "e2e")
    stack.spawn("bridge", "ingest")
    if with_flagger and args.judging == "together":  # one group stores and judges (consumers/store_and_judge.py)
        stack.spawn("consumer", "consume", "readings", "deadletters")
        return stack
    stack.spawn("consumer", "consume", "store", "deadletters")
    if with_flagger:  # the flagger's own group, in its own process
        stack.spawn("flagger", "consume", "flagger")
    return stack


def _messages(count: int, seed: int) -> list[tuple[str, str, bytes]]:
    fleet = Fleet(FleetConfig(markets=10, stations_per_market=3, readers_per_station=3, seed=seed))
    start = datetime.now(UTC) - timedelta(hours=1)
    out = []
    for topic, payload in fleet.readings(count, start, timedelta(milliseconds=10)):
        out.append((topic, payload["reading_id"], encode(payload)))
    return out


def _wait_ready(stack: BenchStack, timeout: float = 90.0) -> None:
    """Publish a probe (again every 2 s: the bridge may not have subscribed yet) until it is stored."""
    assert stack.settings.mqtt_url and stack.settings.database_url
    probe = _messages(1, seed=999)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Publisher(stack.settings.mqtt_url, "5", record_times=False) as pub:
            pub.publish(probe[0][0], probe[0][2])
        for _ in range(4):
            if _stored_count(stack.settings.database_url) >= 1:
                return
            time.sleep(0.5)
    raise RuntimeError(f"the pipeline did not store a probe reading within {timeout}s; logs in {stack.work}")


def _stored_count(dsn: str, table: str = "readings") -> int:
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {table}")
            return int(cur.fetchone()[0])  # type: ignore[index]
    finally:
        conn.close()


def _judged(dsn: str, sent_at: dict[str, float], since_count: int, timeout: float = 300.0) -> dict[str, Any]:
    """Wait until the flagger has judged every acknowledged reading; when the last verdict was made."""
    expected = since_count + len(sent_at)
    deadline = time.monotonic() + timeout
    with open_progress("bench: judged", len(sent_at), unit="readings") as bar:
        while (judged_now := _stored_count(dsn, "verdicts")) < expected and time.monotonic() < deadline:
            bar.update(judged_now - since_count)
            time.sleep(0.5)
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), extract(epoch FROM max(judged_at)) FROM verdicts"
                        " WHERE reading_id::text = ANY(%s)", (list(sent_at),))
            judged, last = cur.fetchone()  # type: ignore[misc]
    finally:
        conn.close()
    return {"judged": int(judged), "last_judged": float(last or 0.0)}


Message = tuple[str, str, bytes]


def _publish_phase(url: str, messages: list[Message], rate: float | None) -> tuple[dict[str, float], float]:
    limiter = RateLimiter(rate) if rate else None
    with Publisher(url, "5", max_outstanding=2000, progress=sys.stderr, progress_total=len(messages)) as pub:
        start = time.time()
        for topic, reading_id, payload in messages:
            if limiter:
                limiter.wait()
            pub.publish(topic, payload, reading_id)
        stats = pub.close(timeout_s=120)
        if stats.unacked:
            raise RuntimeError(f"{stats.unacked} messages were never acknowledged by the broker")
        return dict(pub.sent_at), start


def _publish_flat_out(url: str, messages: list[Message], processes: int, work: Path) -> tuple[dict[str, float], float]:
    """Several publisher processes (one Python publisher tops out below the pipeline): each reading's
    send time, and the CPU seconds the publishers used publishing."""
    chunks = [messages[i::processes] for i in range(processes)]
    procs = []
    for i, chunk in enumerate(chunks):
        path = work / f"pub-{i}.jsonl"
        with path.open("w") as f:
            for topic, reading_id, payload in chunk:
                f.write(json.dumps([topic, reading_id, payload.decode()], ensure_ascii=False) + "\n")
        procs.append((subprocess.Popen([sys.executable, "-m", "bench.publish_file", url, str(path)],
                                       stdout=subprocess.PIPE), path))
    sent_at: dict[str, float] = {}
    cpu = 0.0
    for proc, _ in procs:
        out, _ = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError("a publisher process failed")
        report = json.loads(out)
        sent_at.update(report["sent_at"])
        cpu += report["cpu_s"]
    return sent_at, cpu


def _collect(dsn: str, sent_at: dict[str, float], since_count: int, timeout: float = 300.0) -> dict[str, Any]:
    """Wait until every acknowledged reading is stored (or timeout), then measure."""
    expected = since_count + len(sent_at)
    deadline = time.monotonic() + timeout
    stored = _stored_count(dsn)
    with open_progress("bench: stored", len(sent_at), unit="readings") as bar:
        while stored < expected and time.monotonic() < deadline:
            time.sleep(0.5)
            stored = _stored_count(dsn)
            bar.update(stored - since_count)
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT reading_id::text, extract(epoch FROM stored_at) FROM readings"
                        " WHERE reading_id::text = ANY(%s)", (list(sent_at),))
            rows = cur.fetchall()
    finally:
        conn.close()
    stored_at: dict[str, float] = {}
    doubled = 0
    for rid, ts in rows:
        if rid in stored_at:
            doubled += 1
        stored_at[rid] = float(ts)
    latencies = [stored_at[r] - sent_at[r] for r in stored_at]
    first_sent = min(sent_at.values())
    last_stored = max(stored_at.values()) if stored_at else first_sent
    return {
        "published": len(sent_at),
        "stored": len(stored_at),
        "lost": len(sent_at) - len(stored_at),
        "doubled": doubled,
        "seconds": round(last_stored - first_sent, 2),
        "readings_per_s": round(len(stored_at) / max(last_stored - first_sent, 1e-9), 1),
        "latency_s": percentiles(latencies),
    }


def run_bench(args: argparse.Namespace) -> int:
    """Components alone, then the pipeline without and with the flagger, then positive -> SSE; the
    targets of issue 8 from this one run (``--flagger-cost``: only the two flat-out phases)."""
    figures: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "started": datetime.now(UTC).isoformat(),
                               "judging": args.judging}
    work = Path(tempfile.mkdtemp(prefix="rt-bench-"))
    print(f"bench: logs and scratch files in {work}", file=sys.stderr, flush=True)
    if not args.skip_components and not args.flagger_cost:
        figures["components"] = _components(args, work)
        _print_components(figures["components"])
    figures["without_flagger"] = _run_stack(args, work / "without", with_flagger=False,
                                            latency_phase=not args.flagger_cost)
    if not args.no_flagger_phases:
        figures["with_flagger"] = _run_stack(args, work / "with", with_flagger=True, latency_phase=False)
        base, flagged = figures["without_flagger"]["flat_out_phase"], figures["with_flagger"]["flat_out_phase"]
        cost = 1 - flagged["judged_per_s"] / base["readings_per_s"]
        figures["flagging_cost"] = round(cost, 3)
        print(f"flagging cost: {base['readings_per_s']:,.0f} readings/s stored without the flagger, "
              f"{flagged['judged_per_s']:,.0f} stored and judged with it ({flagged['readings_per_s']:,.0f} stored, "
              f"judging {args.judging}): {cost:.1%} of end-to-end throughput", flush=True)
        if not args.flagger_cost and args.sse_duration > 0:
            from bench.flagging import bench_sse

            figures["sse"] = bench_sse(args.database_url, args.rate, args.sse_duration, 0.01, args.judging)
            sse = figures["sse"]
            print(f"positive -> SSE at {sse['rate']:,} readings/s: {sse['received']} of {sse['positives']} positives "
                  f"on the stream, p50 {sse['p50_ms']} ms, p95 {sse['p95_ms']} ms, p99 {sse['p99_ms']} ms", flush=True)
    if not args.flagger_cost:
        _print_targets(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


def _print_targets(f: dict[str, Any]) -> None:
    """Issue 8's targets, each with this run's figure."""
    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    print("targets (issue 8), all from this run:")
    flat = f["without_flagger"]["flat_out_phase"]
    mqtt = f.get("components", {}).get("mqtt", {}).get("end_to_end_per_s")
    if mqtt:
        share = flat["readings_per_s"] / mqtt
        print(f"  end to end {flat['readings_per_s']:,.0f}/s = {share:.0%} of MQTT alone ({mqtt:,}/s); "
              f"target >= 50%: {verdict(share >= 0.5)}")
    per = f["without_flagger"]["cpu_us_per_reading"]
    bridge, store = per.get("bridge", 1e9), per.get("consumer", 1e9)
    print(f"  CPU a reading: bridge {bridge:.0f} µs (target <= 90: {verdict(bridge <= 90)}), store consumer "
          f"{store:.0f} µs (target <= 60: {verdict(store <= 60)}); Tansu {per.get('tansu', 0):.0f} µs, "
          f"Mosquitto {per.get('mosquitto', 0):.0f} µs")
    components = f.get("components", {})
    sub = components.get("mqtt", {}).get("subscriber_cpu_us")
    produce = components.get("kafka", {}).get("produce_cpu_us")
    if sub is not None and produce is not None:
        print(f"  the bridge's client floor in this run: a paho subscriber {sub:.0f} µs + a kafka-python producer "
              f"{produce:.0f} µs = {sub + produce:.0f} µs a message; the bridge is {bridge / (sub + produce):.1f}x it")
    mqtt_parts = components.get("mqtt", {})
    if {"publisher_cpu_us", "broker_cpu_us", "subscriber_cpu_us"} <= mqtt_parts.keys():
        alone = mqtt_parts["publisher_cpu_us"] + mqtt_parts["broker_cpu_us"] + mqtt_parts["subscriber_cpu_us"]
        parts = {"publisher": flat.get("publisher_cpu_us", 0.0), **per}
        whole = sum(parts.values())
        cpus = f.get("machine", {}).get("cpus") or 1
        print(f"  machine CPU a reading: MQTT alone {alone:.0f} µs (publisher {mqtt_parts['publisher_cpu_us']:.0f}, "
              f"Mosquitto {mqtt_parts['broker_cpu_us']:.0f}, subscriber {mqtt_parts['subscriber_cpu_us']:.0f}); "
              f"end to end {whole:.0f} µs (" + ", ".join(f"{k} {v:.0f}" for k, v in parts.items()) + f"); "
              f"on {cpus} cores, CPU-bound, half the rate of MQTT alone needs end to end <= {2 * alone:.0f} µs")
    if "with_flagger" in f:
        judged = f["with_flagger"]["cpu_us_per_reading"]
        print("  with the flagger: " + ", ".join(f"{k} {v:.0f} µs" for k, v in judged.items()))
    if "flagging_cost" in f:
        print(f"  flagging cost {f['flagging_cost']:.1%} (target < 20%: {verdict(f['flagging_cost'] < 0.2)})")
    if "sse" in f and f["sse"]["p99_ms"] is not None:
        sse = f["sse"]
        print(f"  positive -> SSE p99 {sse['p99_ms']:,.0f} ms at {sse['rate']:,}/s (target < 1,000 ms: "
              f"{verdict(sse['p99_ms'] < 1000 and sse['lost'] == 0)}; {sse['lost']} not on the stream)")
    phases = [p for stack in ("without_flagger", "with_flagger") for k, p in f.get(stack, {}).items()
              if k.endswith("_phase")]
    lost, doubled = sum(p["lost"] for p in phases), sum(p["doubled"] for p in phases)
    print(f"  lost {lost}, doubled {doubled} over {sum(p['published'] for p in phases):,} readings "
          f"(target 0 and 0: {verdict(lost == 0 and doubled == 0)})", flush=True)


def _run_stack(args: argparse.Namespace, work: Path, *, with_flagger: bool, latency_phase: bool) -> dict[str, Any]:
    """Start a fresh stack, run the phases, stop it; the figures of this stack."""
    work.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {}
    stack = _start_stack(args, work, with_flagger)
    pids = stack.pids()
    sampler = RssSampler(pids)
    sampler.start()
    label = "with the flagger" if with_flagger else "without the flagger"
    try:
        assert stack.settings.mqtt_url and stack.settings.database_url
        dsn = stack.settings.database_url
        _wait_ready(stack)
        if latency_phase:
            msgs = _messages(int(args.rate * args.latency_duration), seed=1)
            base = _stored_count(dsn)
            sent, _ = _publish_phase(stack.settings.mqtt_url, msgs, args.rate)
            figures["latency_phase"] = {"rate": args.rate, **_collect(dsn, sent, base)}
            _print_phase(f"fixed rate {args.rate:,.0f}/s", figures["latency_phase"])

        n_flat = int(7000 * args.duration)
        print(f"bench ({label}): generating {n_flat:,} readings for the flat-out phase ...",
              file=sys.stderr, flush=True)
        msgs = _messages(n_flat, seed=2)
        base = _stored_count(dsn)
        judged_base = _stored_count(dsn, "verdicts") if with_flagger else 0
        sent, publisher_cpu = _publish_flat_out(stack.settings.mqtt_url, msgs, args.publishers, work)
        flat = _collect(dsn, sent, base)
        flat["publisher_cpu_us"] = round(publisher_cpu / max(len(sent), 1) * 1e6, 1)
        if with_flagger:
            judged = _judged(dsn, sent, judged_base)
            first_sent = min(sent.values())
            through = max(judged["last_judged"], first_sent + flat["seconds"]) - first_sent
            flat.update(judged=judged["judged"], judged_seconds=round(through, 2),
                        judged_per_s=round(min(judged["judged"], flat["stored"]) / max(through, 1e-9), 1))
        figures["flat_out_phase"] = flat
        _print_phase(f"flat out ({label})", flat)
        if with_flagger:
            print(f"  judged {flat['judged']:,} of them; stored and judged in {flat['judged_seconds']}s = "
                  f"{flat['judged_per_s']:,.0f} readings/s", flush=True)
        stored_total = _stored_count(dsn)
    finally:
        figures["cpu_s"] = _cpu_seconds(pids)
        figures["cpu_s"]["postgres"] = round(sum(backend_cpu(stack.dbname).values()), 1)
        sampler.stop()
        figures["peak_rss_mb"] = sampler.peaks_mb()
        stack.stop()
    figures["cpu_us_per_reading"] = {k: round(v / max(stored_total, 1) * 1e6, 1) for k, v in figures["cpu_s"].items()}
    print(f"CPU seconds used for {stored_total:,} readings: " + ", ".join(
        f"{k} {v:.1f} ({figures['cpu_us_per_reading'][k]:.0f} µs a reading)" for k, v in figures["cpu_s"].items()))
    print("peak RSS (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in figures["peak_rss_mb"].items()), flush=True)
    return figures


def _cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, pid in pids.items():
        try:
            times = psutil.Process(pid).cpu_times()
            out[name] = round(times.user + times.system, 1)
        except psutil.Error:
            continue
    return out


def _components(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from bench import components

    mosquitto = Mosquitto(free_port(), work / "mosquitto-components")
    mosquitto.start()
    kafka = EmbeddedKafka(free_port(), work / "kafka-components").start()
    try:
        return {
            "mqtt": components.mqtt_throughput(f"mqtt://127.0.0.1:{mosquitto.port}", count=100_000,
                                               broker_pid=mosquitto.pid),
            "kafka": components.kafka_throughput(kafka.bootstrap, count=100_000),
            "postgres": components.postgres_insert(args.database_url, rows=100_000),
        }
    finally:
        kafka.stop()
        mosquitto.stop()


def _print_components(c: dict[str, Any]) -> None:
    print("components alone:")
    for name, figures in c.items():
        print(f"  {name:9s} {json.dumps(figures, default=str)}")


def _print_phase(title: str, f: dict[str, Any]) -> None:
    lat = f["latency_s"]
    print(f"{title}: {f['stored']:,} stored of {f['published']:,} published in {f['seconds']}s = "
          f"{f['readings_per_s']:,.0f} readings/s end to end; lost {f['lost']}, doubled {f['doubled']}; "
          f"publish->row p50 {lat['p50'] * 1000:.0f} ms, p95 {lat['p95'] * 1000:.0f} ms, "
          f"p99 {lat['p99'] * 1000:.0f} ms",
          flush=True)
