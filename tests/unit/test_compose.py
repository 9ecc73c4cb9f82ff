"""docker-compose.yml against the Compose Specification schema and the house rules of issue 5.

There is no Docker engine here, so the file is checked statically: the schema
(tests/data/compose-spec.json, see compose-spec.NOTICE), then the production
rules: health checks, start-up order, no secrets, limits, restart policies,
named volumes, pinned images. Each rule is a function returning problems, and
each is also shown to catch a broken copy of the file.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from schemas.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"

SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|PASSWD|PRIVATE", re.IGNORECASE)
REQUIRED_VAR = re.compile(r"\$\{[A-Z0-9_]+:\?[^}]+\}")
INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z0-9_]+)(?:(:?[-?])([^}]*))?\}")
EXPECTED_COMMANDS = {
    "bridge": ["rapidtrace", "ingest"],
    "readings": ["rapidtrace", "consume", "readings", "deadletters"],
    "chain": ["rapidtrace", "consume", "chain"],
    "api": ["rapidtrace", "api"],
    "migrate": ["rapidtrace", "migrate"],
}
STATEFUL_MOUNTS = {
    "timescaledb": "/var/lib/postgresql/data",
    "kafka": "/var/lib/kafka/data",
    "mosquitto": "/mosquitto/data",
}


def interpolate(value: Any) -> Any:
    """What compose does with ``${VAR:-default}`` / ``${VAR:?msg}`` when the required variables are set."""
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            op, arg = match.group(2), match.group(3)
            return arg if op in (":-", "-") else "set-by-operator"
        return INTERPOLATION.sub(sub, value)
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    return value


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA.read_text())
    return loaded


def services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return doc["services"]


def is_one_shot(svc: dict[str, Any]) -> bool:
    return svc.get("restart") == "no"


# ---------------------------------------------------------------- rules


def schema_problems(doc: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(interpolate(doc))]


def healthcheck_problems(doc: dict[str, Any]) -> list[str]:
    problems = []
    for name, svc in services(doc).items():
        if is_one_shot(svc):
            continue
        check = svc.get("healthcheck") or {}
        test = check.get("test")
        if not test or check.get("disable") or (isinstance(test, list) and test[0] == "NONE"):
            problems.append(f"{name}: long-running service without a health check")
        elif isinstance(test, list) and test[0] not in ("CMD", "CMD-SHELL"):
            problems.append(f"{name}: health check test must start with CMD or CMD-SHELL")
        for key in ("interval", "timeout", "retries"):
            if test and key not in check:
                problems.append(f"{name}: health check without {key}")
    return problems


def depends_on_problems(doc: dict[str, Any]) -> list[str]:
    problems = []
    all_services = services(doc)
    needed_by: dict[str, int] = {}
    for name, svc in all_services.items():
        deps = svc.get("depends_on", {})
        if isinstance(deps, list):
            problems.append(f"{name}: depends_on must name a condition for each service")
            continue
        for dep, spec in deps.items():
            condition = (spec or {}).get("condition")
            target = all_services.get(dep)
            if target is None:
                problems.append(f"{name}: depends on unknown service {dep}")
            elif condition == "service_healthy" and not target.get("healthcheck"):
                problems.append(f"{name}: waits for {dep} to be healthy, but {dep} has no health check")
            elif condition == "service_completed_successfully" and not is_one_shot(target):
                problems.append(f"{name}: waits for long-running {dep} to complete")
            elif condition not in ("service_healthy", "service_completed_successfully"):
                problems.append(f"{name}: depends on {dep} with condition {condition!r}")
            needed_by[dep] = needed_by.get(dep, 0) + 1
    for name, svc in all_services.items():
        if is_one_shot(svc) and not needed_by.get(name):
            problems.append(f"{name}: one-shot service nothing waits for")
    return problems


def secret_problems(doc: dict[str, Any]) -> list[str]:
    problems = []
    for name, svc in services(doc).items():
        env = svc.get("environment") or {}
        items = env.items() if isinstance(env, dict) else (e.partition("=")[::2] for e in env)
        for key, value in items:
            text = "" if value is None else str(value)
            if SECRET_KEY.search(key) and not key.endswith("_FILE") and not REQUIRED_VAR.fullmatch(text):
                problems.append(f"{name}: {key} must be a ${{VAR:?message}} reference, not a literal")
            if re.search(r"://[^/@\s]*:(?!\$\{)[^@\s]+@", text):
                problems.append(f"{name}: {key} has a literal password in a URL")
            for match in INTERPOLATION.finditer(text):
                if match.group(1) and match.group(2) is None:
                    problems.append(f"{name}: {key} uses ${{{match.group(1)}}} without :- default or :? message")
    return problems


def limit_problems(doc: dict[str, Any]) -> list[str]:
    problems = []
    for name, svc in services(doc).items():
        limits = svc.get("deploy", {}).get("resources", {}).get("limits", {})
        for key in ("cpus", "memory"):
            if key not in limits:
                problems.append(f"{name}: no {key} limit")
    return problems


def restart_problems(doc: dict[str, Any]) -> list[str]:
    return [
        f"{name}: restart policy {svc.get('restart')!r}"
        for name, svc in services(doc).items()
        if svc.get("restart") not in ("unless-stopped", "always", "no")
    ]


def volume_problems(doc: dict[str, Any]) -> list[str]:
    problems = []
    declared = set((doc.get("volumes") or {}).keys())
    for name, svc in services(doc).items():
        for mount in svc.get("volumes", []):
            source, _, rest = str(mount).partition(":")
            target = rest.split(":")[0]
            if source.startswith(("./", "/")):
                if not rest.endswith(":ro"):
                    problems.append(f"{name}: bind mount {source} must be read-only")
                if not (ROOT / source).exists():
                    problems.append(f"{name}: bind mount {source} does not exist in the repository")
            elif not target:
                problems.append(f"{name}: anonymous volume {source}")
            elif source not in declared:
                problems.append(f"{name}: volume {source} is not a declared named volume")
        data_path = STATEFUL_MOUNTS.get(name)
        if data_path and not any(
            str(m).split(":")[1:2] == [data_path] and str(m).split(":")[0] in declared for m in svc.get("volumes", [])
        ):
            problems.append(f"{name}: {data_path} is not on a named volume")
    return problems


def image_problems(doc: dict[str, Any]) -> list[str]:
    problems = []
    for name, svc in interpolate(doc)["services"].items():
        image = svc.get("image", "")
        tag = image.rpartition(":")[2] if ":" in image else ""
        if not tag or tag == "latest" or "/" in tag:
            problems.append(f"{name}: image {image!r} is not pinned to a version tag")
    return problems


ALL_RULES = (healthcheck_problems, depends_on_problems, secret_problems, limit_problems, restart_problems,
             volume_problems, image_problems)


# ---------------------------------------------------------------- the real file


def test_valid_against_compose_spec(raw: dict[str, Any], schema: dict[str, Any]) -> None:
    assert schema_problems(raw, schema) == []


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.__name__)
def test_house_rules(raw: dict[str, Any], rule: Any) -> None:
    assert rule(raw) == []


def test_required_services_and_commands(raw: dict[str, Any]) -> None:
    svcs = services(interpolate(raw))
    for name, command in EXPECTED_COMMANDS.items():
        assert svcs[name]["command"] == command, name
        assert svcs[name]["build"]["dockerfile"] == "Dockerfile", name
    assert {"kafka", "kafka-topics", "mosquitto", "timescaledb", "mqtt-auth"} <= set(svcs)
    assert svcs["kafka"]["image"].split(":")[0].endswith("apache/kafka")
    assert "eclipse-mosquitto:2" in svcs["mosquitto"]["image"]
    assert re.search(r"timescale/timescaledb:[\d.]+-pg(1[6-9]|[2-9]\d)", svcs["timescaledb"]["image"])


def test_services_start_after_migrations_and_topics(raw: dict[str, Any]) -> None:
    svcs = services(raw)
    for name in ("readings", "chain", "api"):
        deps = svcs[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["kafka-topics"]["condition"] == "service_completed_successfully", name
    assert svcs["bridge"]["depends_on"]["mosquitto"]["condition"] == "service_healthy"
    assert svcs["bridge"]["depends_on"]["kafka-topics"]["condition"] == "service_completed_successfully"
    assert svcs["mosquitto"]["depends_on"]["mqtt-auth"]["condition"] == "service_completed_successfully"


def test_kafka_runs_kraft_without_auto_created_topics(raw: dict[str, Any]) -> None:
    env = services(raw)["kafka"]["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"] and "broker" in env["KAFKA_PROCESS_ROLES"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    assert "KAFKA_ZOOKEEPER_CONNECT" not in env
    assert str(env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]).lower() == "false"
    assert "three" in COMPOSE.read_text().lower() or "3 nodes" in COMPOSE.read_text().lower()


def test_services_get_the_settings_they_read(raw: dict[str, Any]) -> None:
    svcs = interpolate(raw)["services"]
    for name in ("readings", "chain", "api", "migrate"):
        assert svcs[name]["environment"]["RT_DATABASE_URL"].startswith("postgresql://rapidtrace:"), name
    bridge = svcs["bridge"]["environment"]
    assert bridge["RT_MQTT_URL"] == "mqtt://mosquitto:1883"
    assert bridge["RT_MQTT_PROTOCOL"] == "5" and bridge["RT_MQTT_USERNAME"] and bridge["RT_MQTT_PASSWORD"]
    assert "RT_DATABASE_URL" not in bridge  # the bridge never touches the database
    known = {f"RT_{field.upper()}" for field in Settings.model_fields}
    for name in EXPECTED_COMMANDS:
        unknown = {k for k in svcs[name]["environment"] if k.startswith("RT_")} - known
        assert not unknown or unknown <= {"RT_MQTT_PASSWORD_FILE", "RT_MQTT_ACL_FILE"}, (name, unknown)


def test_topic_script_creates_every_configured_topic(tmp_path: Path) -> None:
    """Run deploy/kafka/create-topics.sh with a recording stand-in for kafka-topics.sh."""
    log = tmp_path / "calls"
    fake = tmp_path / "kafka-topics.sh"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\necho "Topic: x PartitionCount: 6 ReplicationFactor: 1"\n')
    fake.chmod(0o755)
    env = {**os.environ, "KAFKA_BOOTSTRAP": "kafka:9092", "KAFKA_TOPICS_BIN": str(fake), "RT_TOPIC_PARTITIONS": "6"}
    subprocess.run(["bash", str(ROOT / "deploy/kafka/create-topics.sh")], env=env, check=True, capture_output=True)
    creates = [line for line in log.read_text().splitlines() if "--create" in line]
    defaults = Settings()
    for topic in (defaults.topic_readings, defaults.topic_certificates, defaults.topic_alerts,
                  defaults.topic_deadletter):
        assert any(f"--topic {topic} " in line for line in creates), topic
    assert all("--if-not-exists" in line and "min.insync.replicas=" in line for line in creates)


def test_dockerfile_is_slim_pinned_and_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    base = re.search(r"ARG PYTHON_IMAGE=(\S+)", text)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base.group(1))
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignore and ".git" in ignore


def test_mosquitto_production_config_requires_accounts() -> None:
    text = (ROOT / "deploy/mosquitto/production.conf").read_text()
    device_listener = text.split("listener 1883", 1)[1].split("\nlistener ", 1)[0]
    assert "allow_anonymous false" in device_listener
    assert "password_file /mosquitto/auth/passwd" in device_listener
    assert "acl_file /mosquitto/auth/acl" in device_listener
    assert "listener 1880 127.0.0.1" in text  # the anonymous health listener is loopback-only


# ---------------------------------------------------------------- the rules can fail


def broken(raw: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(raw)


def test_rules_catch_a_broken_file(raw: dict[str, Any], schema: dict[str, Any]) -> None:
    doc = broken(raw)
    del doc["services"]["api"]["healthcheck"]
    assert any("api" in p for p in healthcheck_problems(doc))
    assert any("api" in p for p in depends_on_problems(broken(raw) | {"services": {
        **raw["services"], "api": {**raw["services"]["api"], "depends_on": ["kafka"]}}}))

    doc = broken(raw)
    doc["services"]["readings"]["environment"]["RT_DATABASE_URL"] = "postgresql://rapidtrace:hunter2@db/rapidtrace"
    doc["services"]["bridge"]["environment"]["RT_MQTT_PASSWORD"] = "hunter2"
    doc["services"]["api"]["environment"]["RT_X"] = "${UNSET_VAR}"
    problems = secret_problems(doc)
    assert len([p for p in problems if "readings" in p or "bridge" in p or "UNSET_VAR" in p]) == 3

    doc = broken(raw)
    del doc["services"]["kafka"]["deploy"]
    doc["services"]["chain"]["restart"] = "on-failure"
    doc["services"]["timescaledb"]["volumes"] = ["/srv/pg:/var/lib/postgresql/data"]
    doc["services"]["mosquitto"]["image"] = "eclipse-mosquitto:latest"
    assert limit_problems(doc) and restart_problems(doc) and volume_problems(doc) and image_problems(doc)

    doc = broken(raw)
    doc["services"]["api"]["restart"] = "sometimes"
    doc["services"]["api"]["deploy"]["resources"]["limits"]["bogus"] = 1
    assert schema_problems(doc, schema)


def test_healthcheck_probe_reads_established_connections(tmp_path: Path) -> None:
    """deploy/healthcheck.py `connected`: remote ports of ESTABLISHED (01) rows only."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "deploy/healthcheck.py")
    assert spec and spec.loader
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    table = tmp_path / "tcp"
    table.write_text(
        "  sl  local_address rem_address   st tx_queue rx_queue\n"
        "   0: 0100007F:A1B2 0100007F:075B 01 00000000:00000000\n"  # established to 1883
        "   1: 0100007F:A1B3 0100007F:2384 06 00000000:00000000\n"  # TIME_WAIT to 9092
        "   2: 00000000:1F40 00000000:0000 0A 00000000:00000000\n"  # listening on 8000
    )
    assert probe.remote_ports((str(table),)) == {1883}
    assert probe.main(["nonsense"]) == 2
