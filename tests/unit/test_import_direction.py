"""The dependency direction of issue 8, read from every module's imports (ast), so a forbidden one fails here.

Layers (a package may import its own modules and those listed; stdlib and third-party are free except below):

    schemas     -> (nothing of ours)
    domain      -> schemas
    storage     -> domain, schemas
    ingest      -> domain, schemas
    consumers   -> storage, domain, schemas, and the Kafka producer adapter ingest.kafka_out
    api         -> storage, domain, schemas, and the Kafka adapters ingest.kafka_out, kafka_admin
    simulators  -> storage, domain, schemas, and ingest.kafka_out
    runtime, bench -> anything: they are the wiring

So nothing imports consumers/, api/, runtime/ or bench/ sideways. psycopg2 is imported only in storage/;
kafka-python only in the adapter modules of ``KAFKA_ADAPTERS``. Imports under ``if TYPE_CHECKING:`` are
types only and do not count for the client-library rules (they still count between layers).

``ALLOWED`` lists today's violations in others' files, each with why it is there: it can only shrink. The
test also fails when an allow-listed import no longer exists, so the list stays true.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "domain", "storage", "ingest", "consumers", "api", "simulators", "runtime", "bench")
KAFKA_ADAPTER = "ingest.kafka_out"
MAY_IMPORT: dict[str, frozenset[str]] = {
    "schemas": frozenset(),
    "domain": frozenset({"schemas"}),
    "storage": frozenset({"domain", "schemas"}),
    "ingest": frozenset({"domain", "schemas"}),
    "consumers": frozenset({"storage", "domain", "schemas"}),
    "api": frozenset({"storage", "domain", "schemas"}),
    "simulators": frozenset({"storage", "domain", "schemas"}),
    "runtime": frozenset(PACKAGES),
    "bench": frozenset(PACKAGES),
}
ADAPTER_USERS = frozenset({"consumers", "api", "simulators"})  # may import KAFKA_ADAPTER besides their layers
#: What the API may import of ingest/ besides the producer: consumer lag for ``GET /metrics``.
API_ADAPTERS = frozenset({"ingest.kafka_admin"})
#: The modules that speak Kafka: the producer and send-and-wait (ingest.kafka_out), the consumer (the runner and
#: its source), topic set-up, and the admin client that reads consumer lag and waits for a broker
#: (ingest.kafka_admin, for api.metrics and runtime.embedded).
KAFKA_ADAPTERS = frozenset({"ingest.kafka_out", "consumers.runner", "consumers.kafka_source", "runtime.kafka_topics",
                            "ingest.kafka_admin"})

#: (importing module, imported module) pairs that break a rule today, in files their owners are rewriting.
#: Remove an entry when its import goes; never add one.
ALLOWED: frozenset[tuple[str, str]] = frozenset({
    # benchmarks that measure or drive the client libraries themselves:
    ("bench.chain", "psycopg2"),  # CHECKPOINT before measuring
    ("bench.chain", "kafka"),
    ("bench.components", "kafka"),  # measures the Kafka client alone
    ("bench.components", "kafka.admin"),
    ("bench.components", "kafka.record"),
    ("bench.components", "psycopg2.extras"),
})


def modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(module: str, path: Path) -> Iterator[tuple[str, bool]]:
    """(imported module, type-only) for every import anywhere in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            type_only.update(id(n) for child in node.body for n in ast.walk(child))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, id(node) in type_only
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            yield base, id(node) in type_only
            for alias in node.names:  # ``from api.routes import admin`` imports the module api.routes.admin
                candidate = f"{base}.{alias.name}"
                if (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists():
                    yield candidate, id(node) in type_only


def violation(module: str, target: str, type_only: bool) -> str | None:
    """Why ``module`` may not import ``target``, or None."""
    layer, top = module.split(".", maxsplit=1)[0], target.split(".", maxsplit=1)[0]
    if top == "psycopg2" and layer != "storage" and not type_only:
        return "psycopg2 is imported only in storage/"
    if top == "kafka" and module not in KAFKA_ADAPTERS and not type_only:
        return f"kafka-python is imported only in the adapters {sorted(KAFKA_ADAPTERS)}"
    if top not in PACKAGES or top == layer:
        return None
    if top in MAY_IMPORT[layer] or (layer in ADAPTER_USERS and target == KAFKA_ADAPTER):
        return None
    if layer == "api" and target in API_ADAPTERS:
        return None
    return f"{layer}/ may import only {sorted(MAY_IMPORT[layer]) or 'nothing of ours'}"


def found_violations() -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for module, path in modules():
        for target, type_only in imports(module, path):
            why = violation(module, target, type_only)
            if why is not None:
                found.setdefault((module, target), why)
    return found


def test_no_forbidden_import_outside_the_allow_list() -> None:
    new = {pair: why for pair, why in found_violations().items() if pair not in ALLOWED}
    listing = "\n".join(f"  {m} imports {t}: {why}" for (m, t), why in sorted(new.items()))
    assert not new, "forbidden imports:\n" + listing


def test_the_allow_list_only_names_imports_that_still_exist() -> None:
    gone = ALLOWED - set(found_violations())
    assert not gone, "remove from ALLOWED (the import is gone):\n" + "\n".join(f"  {m} -> {t}" for m, t in sorted(gone))


def test_the_rules_catch_what_they_name() -> None:
    """The checker itself: each rule refuses its example and lets the allowed direction through."""
    assert violation("domain.judging", "storage.db", False)
    assert violation("api.routes.admin", "runtime.mqtt_auth", False)
    assert violation("consumers.flagger", "api.deps", False)
    assert violation("simulators.fleet", "consumers.runner", False)
    assert violation("api.deps", "psycopg2", False) and not violation("api.deps", "psycopg2", True)
    assert violation("api.routes.certificates", "kafka", False)
    assert not violation("api.routes.admin", "storage.devices", False)
    assert not violation("api.deps", KAFKA_ADAPTER, False) and not violation("api.metrics", "ingest.kafka_admin", False)
    assert violation("simulators.fleet", "ingest.kafka_admin", False)
    assert violation("api.metrics", "ingest.bridge", False)
    assert not violation("runtime.cli", "api.app", False) and not violation("storage.db", "psycopg2", False)
    assert not violation("ingest.kafka_out", "kafka", False)
