"""The ``rapidtrace`` command: one subcommand per long-running part, plus set-up tools."""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import sys
from collections.abc import Callable

from runtime import registry_cli
from runtime.admin_cli import add_subcommands
from runtime.gc_tuning import tune_gc
from schemas.settings import Settings, load_settings
from simulators.publisher import add_simulate_arguments, run_simulate


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    logging.getLogger("amqtt").setLevel(logging.WARNING)


def _require(settings: Settings, *names: str) -> None:
    missing = [f"RT_{n.upper()}" for n in names if not getattr(settings, n)]
    if missing:
        raise SystemExit(f"rapidtrace: set {', '.join(missing)} (or use `rapidtrace up` for the embedded stack)")


def _metrics(port: int | None) -> None:
    if port:
        from prometheus_client import start_http_server

        start_http_server(port, addr="127.0.0.1")


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from storage.migrate import migrate

    _require(settings, "database_url")
    assert settings.database_url is not None
    applied = migrate(settings.database_url, settings)
    print("\n".join(applied) if applied else "database is up to date")
    return 0


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.main import run_bridge

    _require(settings, "mqtt_url", "kafka_bootstrap")
    _metrics(args.metrics_port)
    tune_gc(settings.gc_gen0_threshold)
    run_bridge(settings)
    return 0


def cmd_consume(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.main import run_consumers

    _require(settings, "database_url", "kafka_bootstrap")
    _metrics(args.metrics_port)
    tune_gc(settings.gc_gen0_threshold)
    run_consumers(args.names, settings)
    return 0


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from api.app import create_app

    _require(settings, "database_url")
    host = args.host or settings.api_host
    port = args.port or settings.api_port
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", access_log=False)
    return 0


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from runtime.up import run_up

    return run_up(settings, simulate=args.simulate, rate=args.rate, markets=args.markets)


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from bench.e2e import run_bench

    return run_bench(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rapidtrace", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Callable[[argparse.Namespace, Settings], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    add("migrate", cmd_migrate, "apply the database migrations")
    p = add("ingest", cmd_ingest, "run the MQTT -> Kafka bridge")
    p.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus metrics on this port")
    p = add("consume", cmd_consume,
            "run Kafka consumers: store, deadletters, flagger, chain; or readings (store and judge in one)")
    p.add_argument("names", nargs="+", help="consumers to run in this process")
    p.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus metrics on this port")
    p = add("api", cmd_api, "serve the HTTP API")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p = add("up", cmd_up, "start everything; embedded PostgreSQL/MQTT/Kafka where no URL is set")
    p.add_argument("--simulate", action="store_true", help="also run a simulated reader fleet")
    p.add_argument("--rate", type=float, default=None,
                   help="simulated readings per second, e.g. 20 for a demo (default: RT_FLEET_RATE, else the "
                        "district rate: 47 stations x 30 tests a day = 0.016/s)")
    p.add_argument("--markets", type=int, default=None, help="generic simulated markets instead of the "
                                                             "47-station district")
    p = add("simulate", lambda a, s: int(run_simulate(a, s) or 0), "publish simulated readings over MQTT")
    add_simulate_arguments(p)
    try:
        from bench.e2e import add_bench_arguments

        p = add("bench", cmd_bench, "drive the whole path flat out and print figures")
        add_bench_arguments(p)
    except ImportError:  # the production image has no embedded components (the [embedded] extra)
        pass
    add_subcommands(sub)
    registry_cli.add_subcommands(sub)
    return parser


def _forget_live_gauges_at_exit() -> None:
    """In multiprocess metrics mode, a stopped process's live gauges must not linger."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        pid = os.getpid()
        atexit.register(lambda: multiprocess.mark_process_dead(pid))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    _forget_live_gauges_at_exit()
    settings = load_settings()
    return int(args.func(args, settings))


if __name__ == "__main__":
    raise SystemExit(main())
