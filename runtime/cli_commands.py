"""What every ``rapidtrace`` administration command shares: subcommand wiring, the actor it audits as,
one database transaction, JSON lines out, a failure on stderr (``admin_cli``, ``registry_cli``)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from schemas.settings import Settings
from storage.db import Connection

Command = Callable[[argparse.Namespace, Settings], int]


def command(sub: Any, name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
    """A subcommand ``name`` of the subparsers ``sub`` that runs ``func(args, settings)``."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(func=func)
    return parser


def actor() -> str:
    """``cli:<os user>``: who the audit log names for a change made from a shell."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry for this uid (containers)
        return "cli:unknown"


@contextmanager
def database(database_url: str | None, application_name: str) -> Iterator[Connection]:
    """A connection whose transaction commits when the block succeeds and rolls back when it fails."""
    from storage.db import connect, transaction

    if not database_url:
        raise SystemExit("rapidtrace: set RT_DATABASE_URL")
    conn = connect(database_url, application_name=application_name)
    try:
        with transaction(conn):
            yield conn
    finally:
        conn.close()


def print_json(value: Any) -> None:
    """One JSON line on stdout (times and other values as their text)."""
    print(json.dumps(value, default=str, ensure_ascii=False))


def fail(message: str) -> int:
    """Say what went wrong on stderr; the exit status of a refused command."""
    print(f"rapidtrace: {message}", file=sys.stderr)
    return 1
