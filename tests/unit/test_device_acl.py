"""Mosquitto password-file hashes and ACL rendering."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from domain.device_acl import (
    CredentialError,
    MqttAccount,
    generate_password,
    hash_password,
    reading_topic,
    render_acl_file,
    render_password_file,
    verify_password,
)

BRIDGE_FILTERS = ["rt/v1/markets/+/stations/+/devices/+/readings", "rt/v1/markets/+/entry/+/certificates"]


def device(device_id: str, market: str = "m1", station: str = "s1") -> MqttAccount:
    return MqttAccount(device_id, hash_password("pw"), "device", market, station, device_id)


def test_hash_has_mosquitto_2_layout() -> None:
    encoded = hash_password("secret")
    _, seven, iterations, salt, digest = encoded.split("$")
    assert (seven, iterations) == ("7", "101")
    assert len(base64.b64decode(salt)) == 12
    assert len(base64.b64decode(digest)) == 64


def test_hash_is_salted_and_verifies() -> None:
    first, second = hash_password("secret"), hash_password("secret")
    assert first != second
    assert verify_password("secret", first) and verify_password("secret", second)
    assert not verify_password("Secret", first)
    assert not verify_password("secret", "$7$101$not-base64!$xx")
    assert not verify_password("secret", "plain")


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd not installed")
def test_same_hash_as_mosquitto_passwd(tmp_path: Path) -> None:
    pwfile = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pwfile), "dev-1", "s3cr3t-é"], check=True)
    user, theirs = pwfile.read_text().strip().split(":", 1)
    salt = base64.b64decode(theirs.split("$")[3])
    assert user == "dev-1"
    assert hash_password("s3cr3t-é", salt=salt) == theirs
    assert verify_password("s3cr3t-é", theirs)


def test_legacy_sha512_hash_verifies() -> None:
    salt = b"0123456789ab"
    legacy = "$6$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(
        hashlib.sha512(b"pw" + salt).digest()
    ).decode()
    assert verify_password("pw", legacy)
    assert not verify_password("px", legacy)


def test_generated_passwords_are_long_and_url_safe() -> None:
    pw = generate_password()
    assert len(pw) >= 40 and all(c.isalnum() or c in "-_" for c in pw)
    assert pw != generate_password()


def test_reading_topic_rejects_wildcards_and_separators() -> None:
    assert reading_topic("m1", "s.2", "d_3") == "rt/v1/markets/m1/stations/s.2/devices/d_3/readings"
    for bad in ("+", "#", "a/b", "", "x" * 65, "a b"):
        with pytest.raises(CredentialError):
            reading_topic("m1", "s1", bad)


def test_password_file_one_sorted_line_per_account() -> None:
    bridge = MqttAccount("rapidtrace-bridge", hash_password("b"), "bridge")
    text = render_password_file([device("zz"), bridge, device("aa")])
    lines = text.splitlines()
    assert [line.split(":")[0] for line in lines] == ["aa", "rapidtrace-bridge", "zz"]
    assert all(line.split(":", 1)[1].startswith("$7$101$") for line in lines)


def test_password_file_refuses_injection() -> None:
    with pytest.raises(CredentialError):
        render_password_file([MqttAccount("evil\nroot", hash_password("x"), "bridge")])
    with pytest.raises(CredentialError):
        render_password_file([MqttAccount("ok", "$7$1$a$b\nroot:$7$", "bridge")])
    with pytest.raises(CredentialError):
        render_password_file([MqttAccount("ok", "plaintext", "bridge")])


def test_acl_grants_device_its_own_topic_only_and_bridge_reads() -> None:
    bridge = MqttAccount("rapidtrace-bridge", hash_password("b"), "bridge")
    text = render_acl_file([device("d1", "m1", "s1"), device("d2", "m2", "s9"), bridge], BRIDGE_FILTERS)
    blocks = {b.split("\n", 1)[0]: b.strip().splitlines()[1:] for b in text.split("\nuser ")[1:]}
    assert blocks["d1"] == ["topic write rt/v1/markets/m1/stations/s1/devices/d1/readings"]
    assert blocks["d2"] == ["topic write rt/v1/markets/m2/stations/s9/devices/d2/readings"]
    assert blocks["rapidtrace-bridge"] == [f"topic read {f}" for f in BRIDGE_FILTERS]
    # no general (anonymous) rule before the first user block
    head = text.split("\nuser ")[0]
    assert all(line.startswith("#") or not line.strip() for line in head.splitlines())
    assert "readwrite" not in text and "#\n" not in text.replace("# Generated", "")


def test_acl_rejects_bad_filters() -> None:
    with pytest.raises(CredentialError):
        render_acl_file([], ["rt/v1/#\nuser admin"])
