"""``rapidtrace token ...`` and ``rapidtrace device ...``: set-up and administration from a shell.

    rapidtrace token issue --name "Wujin office" --role regulator
    rapidtrace token issue --name "Market 7 desk" --role operator --market M07 --market M08
    rapidtrace token issue --name "Coop 31" --role producer --holder-id coop-wj-0031
    rapidtrace token list [--all] | rapidtrace token revoke TOKEN_ID
    rapidtrace device add --market M07 --station S1 --device R-0031     (prints the password once)
    rapidtrace device list [--market M07] [--all] | device rotate ID | device revoke ID
    rapidtrace device write-acl [--password-file F --acl-file F --reload-pid-file F]

Every command prints JSON. Changes are audited with the actor ``cli:<os user>``.
Commands that change devices rewrite Mosquitto's files when RT_MQTT_PASSWORD_FILE
and RT_MQTT_ACL_FILE are set; ``write-acl`` also makes sure the bridge account
(RT_MQTT_USERNAME / RT_MQTT_PASSWORD) exists with that password.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.cli_commands import actor, command, database, fail, print_json
from schemas.common import utc_now
from schemas.settings import Settings
from storage.db import Connection

if TYPE_CHECKING:
    from storage.device_credentials import IssuedCredentials


def add_subcommands(sub: Any) -> None:
    """Add ``token`` and ``device`` to the ``rapidtrace`` argparse subparsers."""
    _add_token_commands(sub.add_parser("token", help="issue, list and revoke API tokens"))
    _add_device_commands(sub.add_parser("device", help="register readers and write Mosquitto's password/ACL files"))


def _add_token_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="token_command", required=True)
    p = command(sub, "issue", cmd_token_issue, "issue a token (printed once)")
    p.add_argument("--name", required=True, help="who holds it")
    p.add_argument("--role", required=True, choices=["regulator", "operator", "producer"])
    p.add_argument("--market", action="append", dest="markets", help="operator: a market it may see (repeat)")
    p.add_argument("--holder-id", help="producer: the certificate holder id it submits as")
    p.add_argument("--rate-per-minute", type=int, default=600)
    p.add_argument("--expires-in-days", type=float, default=None,
                   help="lifetime (default: RT_TOKEN_EXPIRY_DAYS, 90)")
    p.add_argument("--no-expiry", action="store_true", help="a token that never expires")
    p = command(sub, "revoke", cmd_token_revoke, "revoke a token by its id, or every local one")
    p.add_argument("token_id", nargs="?")
    p.add_argument("--all-local", action="store_true",
                   help="revoke the tokens `rapidtrace up` made for the local stack (and forget the kept one)")
    p = command(sub, "list", cmd_token_list, "list tokens (never their secrets)")
    p.add_argument("--all", action="store_true", help="include revoked tokens")


def _add_device_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="device_command", required=True)
    p = command(sub, "add", cmd_device_add, "register a reader; prints its MQTT password once")
    p.add_argument("--market", required=True)
    p.add_argument("--station", required=True)
    p.add_argument("--device", required=True)
    p = command(sub, "revoke", cmd_device_revoke, "revoke a reader's MQTT account")
    p.add_argument("device_id")
    p = command(sub, "rotate", cmd_device_rotate, "give a reader a new MQTT password (printed once)")
    p.add_argument("device_id")
    p = command(sub, "list", cmd_device_list, "list registered readers")
    p.add_argument("--market", default=None)
    p.add_argument("--all", action="store_true", help="include revoked readers")
    p = command(sub, "write-acl", cmd_device_write_acl, "ensure the bridge account, write password and ACL files")
    p.add_argument("--password-file", type=Path, default=None, help="default RT_MQTT_PASSWORD_FILE")
    p.add_argument("--acl-file", type=Path, default=None, help="default RT_MQTT_ACL_FILE")
    p.add_argument("--reload-pid-file", type=Path, default=None, help="SIGHUP this Mosquitto after writing")


# ---------------------------------------------------------------- tokens


def cmd_token_issue(args: argparse.Namespace, settings: Settings) -> int:
    from domain.access import TokenRequestError
    from storage.tokens import issue_token

    days = None if args.no_expiry else (args.expires_in_days or settings.token_expiry_days)
    expires = utc_now() + timedelta(days=days) if days else None
    with _db(settings) as conn:
        try:
            issued = issue_token(conn, name=args.name, role=args.role, markets=args.markets,
                                 holder_id=args.holder_id, rate_per_minute=args.rate_per_minute,
                                 expires_at=expires, actor=actor())
        except TokenRequestError as exc:
            return fail(str(exc))
    print_json({"token": issued.token, **issued.record.as_dict()})
    print("# keep the token now: it is stored hashed and cannot be shown again", file=sys.stderr)
    return 0


def cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from storage.tokens import revoke_audited

    if args.all_local:
        from runtime.local_token import revoke_local

        revoked = revoke_local(settings)
        print(f"revoked {len(revoked)} local token(s){': ' + ', '.join(revoked) if revoked else ''}")
        return 0
    if not args.token_id:
        return fail("give a TOKEN_ID or --all-local")
    with _db(settings) as conn:
        record = revoke_audited(conn, args.token_id, actor())
    if record is None:
        return fail(f"no token {args.token_id}")
    print_json(record.as_dict())
    return 0


def cmd_token_list(args: argparse.Namespace, settings: Settings) -> int:
    from storage.tokens import list_tokens

    with _db(settings) as conn:
        for record in list_tokens(conn, include_revoked=args.all, limit=100_000):
            print_json(record.as_dict())
    return 0


# ---------------------------------------------------------------- devices


def cmd_device_add(args: argparse.Namespace, settings: Settings) -> int:
    from domain.device_acl import CredentialError
    from storage.device_credentials import add_device
    from storage.devices import DeviceExists

    with _db(settings) as conn:
        try:
            issued = add_device(conn, args.market, args.station, args.device, actor())
        except (DeviceExists, CredentialError) as exc:
            return fail(str(exc))
    print_json(_credentials(issued, settings))
    return 0


def cmd_device_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from storage.device_credentials import rotate_device

    with _db(settings) as conn:
        issued = rotate_device(conn, args.device_id, actor())
    if issued is None:
        return fail(f"no active device {args.device_id}")
    print_json(_credentials(issued, settings))
    return 0


def cmd_device_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from storage.device_credentials import revoke_device

    with _db(settings) as conn:
        account = revoke_device(conn, args.device_id, actor())
    if account is None:
        return fail(f"no device {args.device_id}")
    print_json({**account.as_dict(), "mosquitto_files": _sync(settings)})
    return 0


def cmd_device_list(args: argparse.Namespace, settings: Settings) -> int:
    from storage.devices import list_accounts

    with _db(settings) as conn:
        markets = [args.market] if args.market else None
        for account in list_accounts(conn, markets=markets, include_revoked=args.all, limit=1_000_000):
            print_json(account.as_dict())
    return 0


def cmd_device_write_acl(args: argparse.Namespace, settings: Settings) -> int:
    from storage.device_credentials import MosquittoFiles, bridge_filters, ensure_bridge, write_mosquitto_files

    configured = MosquittoFiles.from_settings(settings)
    files = MosquittoFiles(args.password_file or configured.password_file, args.acl_file or configured.acl_file,
                           args.reload_pid_file or configured.reload_pid_file)
    if not files.configured:
        return fail("give --password-file and --acl-file (or set RT_MQTT_PASSWORD_FILE and RT_MQTT_ACL_FILE)")
    with _db(settings) as conn:
        changed = False
        if settings.mqtt_username and settings.mqtt_password is not None:
            changed = ensure_bridge(conn, settings.mqtt_username, settings.mqtt_password.get_secret_value(), actor())
        conn.commit()
        count = write_mosquitto_files(conn, files, bridge_filters(settings))
    print_json({"accounts": count, "bridge_changed": changed, "password_file": files.password_file,
            "acl_file": files.acl_file})
    return 0


# ---------------------------------------------------------------- helpers


def _db(settings: Settings) -> AbstractContextManager[Connection]:
    return database(settings.database_url, "rapidtrace-admin")


def _credentials(issued: IssuedCredentials, settings: Settings) -> dict[str, Any]:
    """A reader's new account as printed once: the record, its password and topic, the Mosquitto files."""
    return {**issued.account.as_dict(), "password": issued.password, "topic": issued.topic,
            "mosquitto_files": _sync(settings)}


def _sync(settings: Settings) -> dict[str, Any]:
    from storage.device_credentials import sync_mosquitto_files

    with _db(settings) as conn:
        return sync_mosquitto_files(conn, settings).as_dict()
