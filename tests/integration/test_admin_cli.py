"""``rapidtrace token ...`` and ``rapidtrace device ...`` against a real database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from domain.device_acl import verify_password
from runtime.cli import main
from schemas.settings import Settings
from tests.helpers import rows, scalar

pytestmark = pytest.mark.integration


def run(capsys: Any, monkeypatch: Any, env: dict[str, str], *argv: str) -> tuple[int, list[dict[str, Any]], str]:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines() if line.strip()], err


def test_token_commands(db_dsn: str, capsys: Any, monkeypatch: Any) -> None:
    env = {"RT_DATABASE_URL": db_dsn}
    code, (issued,), err = run(capsys, monkeypatch, env, "token", "issue", "--name", "desk 7", "--role", "operator",
                               "--market", "M07", "--market", "M08", "--expires-in-days", "30")
    assert code == 0 and issued["token"].startswith("rtk_") and issued["markets"] == ["M07", "M08"]
    assert "cannot be shown again" in err
    assert scalar(db_dsn, "SELECT count(*) FROM api_tokens WHERE expires_at > now() + interval '29 days'") == 1

    code, listed, _ = run(capsys, monkeypatch, env, "token", "list")
    assert code == 0 and [t["token_id"] for t in listed] == [issued["token_id"]] and "token" not in listed[0]
    code, (revoked,), _ = run(capsys, monkeypatch, env, "token", "revoke", issued["token_id"])
    assert code == 0 and revoked["revoked_at"] and revoked["revoked_by"].startswith("cli:")
    assert run(capsys, monkeypatch, env, "token", "list")[1] == []

    code, out, err = run(capsys, monkeypatch, env, "token", "issue", "--name", "x", "--role", "producer")
    assert code == 1 and out == [] and "holder id" in err
    actions = [r[0] for r in rows(db_dsn, "SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["token.issue", "token.revoke"]


def test_device_commands_write_mosquitto_files(db_dsn: str, capsys: Any, monkeypatch: Any, tmp_path: Path) -> None:
    env = {"RT_DATABASE_URL": db_dsn, "RT_MQTT_USERNAME": "rapidtrace-bridge", "RT_MQTT_PASSWORD": "bridge-pw"}
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    files = ("--password-file", str(passwd), "--acl-file", str(acl))

    code, (first,), _ = run(capsys, monkeypatch, env, "device", "write-acl", *files)
    assert code == 0 and first == {"accounts": 1, "bridge_changed": True, "password_file": str(passwd),
                                   "acl_file": str(acl)}
    user, hashed = passwd.read_text().strip().split(":", 1)
    assert user == "rapidtrace-bridge" and verify_password("bridge-pw", hashed)
    assert run(capsys, monkeypatch, env, "device", "write-acl", *files)[1][0]["bridge_changed"] is False

    code, (added,), _ = run(capsys, monkeypatch, env, "device", "add", "--market", "M07", "--station", "S1",
                            "--device", "R-0031")
    assert code == 0 and added["topic"] == "rt/v1/markets/M07/stations/S1/devices/R-0031/readings"
    assert added["mosquitto_files"]["status"] == "not_configured"  # no RT_MQTT_*_FILE in the environment
    assert run(capsys, monkeypatch, env, "device", "add", "--market", "M07", "--station", "S1",
               "--device", "R-0031")[0] == 1
    assert run(capsys, monkeypatch, env, "device", "add", "--market", "M/7", "--station", "S1",
               "--device", "R-9")[0] == 1

    if "mqtt_password_file" not in Settings.model_fields:
        pytest.skip("Settings has no mqtt_password_file/mqtt_acl_file yet: RT_MQTT_*_FILE are ignored")
    env |= {"RT_MQTT_PASSWORD_FILE": str(passwd), "RT_MQTT_ACL_FILE": str(acl)}
    code, (rotated,), _ = run(capsys, monkeypatch, env, "device", "rotate", "R-0031")
    assert code == 0 and rotated["password"] != added["password"]
    lines = dict(line.split(":", 1) for line in passwd.read_text().splitlines())
    assert verify_password(rotated["password"], lines["R-0031"]) and not verify_password(added["password"],
                                                                                        lines["R-0031"])
    code, listed, _ = run(capsys, monkeypatch, env, "device", "list", "--market", "M07")
    assert code == 0 and [d["device_id"] for d in listed] == ["R-0031"]

    code, (revoked,), _ = run(capsys, monkeypatch, env, "device", "revoke", "R-0031")
    assert code == 0 and revoked["active"] is False and revoked["mosquitto_files"]["status"] == "written"
    assert "R-0031" not in passwd.read_text() and "R-0031" not in acl.read_text()
    assert run(capsys, monkeypatch, env, "device", "revoke", "nope")[0] == 1
