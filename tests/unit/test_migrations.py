"""Static checks of the SQL migrations, chiefly of the TimescaleDB path, which this
machine cannot run: what TimescaleDB 2.13+ (the first for PostgreSQL 16) refuses
is caught here rather than on the first server that has the extension.

Every migration version (base file plus its variant) runs in one transaction
(storage/migrate.py), so nothing in it may need to run outside a transaction block.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schemas.settings import Settings
from storage.migrate import MIGRATIONS_DIR, Migration, discover, render
from storage.stats import COUNTS, KEY_COLUMN, GroupBy

MIGRATIONS = discover()
FILES = sorted(MIGRATIONS_DIR.glob("*.sql"))
TIMESCALE_FILES = [m.timescale for m in MIGRATIONS if m.timescale is not None]
PLAIN_FILES = [m.plain for m in MIGRATIONS if m.plain is not None]
BASE_FILES = [m.base for m in MIGRATIONS]


def _strip(sql: str) -> str:
    """The SQL without line comments and without the bodies of dollar-quoted blocks."""
    sql = re.sub(r"--[^\n]*", "", sql)
    return re.sub(r"\$(\w*)\$.*?\$\1\$", "$$", sql, flags=re.S)


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in _strip(sql).split(";") if s.strip()]


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    return [*parts, current.strip()] if current.strip() else parts


def _body(statement: str) -> str:
    """The text inside the first top-level parentheses of a statement."""
    start = statement.index("(")
    depth = 0
    for i in range(start, len(statement)):
        depth += statement[i] == "("
        depth -= statement[i] == ")"
        if depth == 0:
            return statement[start + 1 : i]
    raise AssertionError(f"unbalanced parentheses in {statement[:60]!r}")


def _columns(text: str) -> tuple[str, ...]:
    return tuple(c.strip().split()[0].strip('"') for c in _split_top(text))


def hypertables() -> dict[str, str]:
    """Table → time column, from the create_hypertable calls of the .timescale.sql files."""
    found = {}
    for path in TIMESCALE_FILES:
        for statement in _statements(path.read_text()):
            if "create_hypertable" not in statement:
                continue
            match = re.search(r"create_hypertable\(\s*'(\w+)'\s*,\s*by_range\(\s*'(\w+)'", statement)
            assert match, f"{path.name}: use create_hypertable(table, by_range(column, interval)) (2.13+ API)"
            found[match[1]] = match[2]
    return found


def _table_keys(create_table: str) -> list[tuple[str, ...]]:
    """Primary keys and unique constraints declared in a CREATE TABLE, inline or as table constraints."""
    keys = []
    for element in _split_top(_body(create_table)):
        item = re.sub(r"^CONSTRAINT\s+\w+\s+", "", element, flags=re.I)
        if re.match(r"(PRIMARY KEY|UNIQUE)\s*\(", item, re.I):
            keys.append(_columns(_body(item)))
        elif re.search(r"\b(PRIMARY KEY|UNIQUE)\b", item, re.I):
            keys.append((item.split()[0],))
    return keys


def unique_keys(table: str) -> list[tuple[str, ...]]:
    """The column lists of every primary key, unique constraint and unique index of ``table``."""
    keys: list[tuple[str, ...]] = []
    for path in FILES:
        for statement in _statements(path.read_text()):
            on_table = re.search(rf"\bON\s+{table}\b", statement, re.I)
            if re.match(rf"CREATE TABLE (IF NOT EXISTS )?{table}\b", statement, re.I):
                keys += _table_keys(statement)
            elif re.match(r"CREATE UNIQUE INDEX\b", statement, re.I) and on_table:
                keys.append(_columns(_body(statement[on_table.end() :])))
            elif re.match(rf"ALTER TABLE {table}\b.*\b(PRIMARY KEY|UNIQUE)\b", statement, re.I | re.S):
                raise AssertionError(f"{path.name}: declare the keys of {table} in its CREATE TABLE")
    return keys


def test_versions_are_contiguous_and_every_variant_has_a_base() -> None:
    # numbers are assigned per issue, so a branch may skip one that another branch adds
    versions = [m.version for m in MIGRATIONS]
    assert versions == sorted(set(versions)) and versions[0] == 1
    assert all(isinstance(m, Migration) and m.base.exists() for m in MIGRATIONS)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_placeholders_render_with_default_settings(path: Path) -> None:
    rendered = render(path.read_text(), Settings())
    assert "{{" not in rendered and "}}" not in rendered


def test_the_statistics_tables_become_hypertables_on_their_time_column() -> None:
    assert hypertables() == {"readings": "measured_at", "verdicts": "measured_at"}


@pytest.mark.parametrize("table", sorted(hypertables()))
def test_every_unique_key_of_a_hypertable_includes_its_time_column(table: str) -> None:
    """TimescaleDB: 'cannot create a unique index without the column ... (used in partitioning)'."""
    keys = unique_keys(table)
    assert keys, f"{table} has no unique key: ON CONFLICT redelivery needs one"
    time_column = hypertables()[table]
    assert all(time_column in key for key in keys), f"{table}: {keys} must all include {time_column}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_foreign_key_references_a_hypertable(path: Path) -> None:
    """Foreign keys to a hypertable need TimescaleDB 2.16; PostgreSQL 16 and 17 run on older 2.x too."""
    for table in hypertables():
        assert not re.search(rf"\bREFERENCES\s+{table}\b", _strip(path.read_text()), re.I), f"{path.name} → {table}"


@pytest.mark.parametrize("path", BASE_FILES + TIMESCALE_FILES, ids=lambda p: p.name)
def test_transition_table_triggers_only_on_the_plain_path(path: Path) -> None:
    """'hypertables do not support transition tables in triggers' (TimescaleDB before 2.18):
    such a trigger in a base file would break create_hypertable on the TimescaleDB path."""
    assert not re.search(r"\bREFERENCING\s+(NEW|OLD)\s+TABLE\b", _strip(path.read_text()), re.I)


NOT_IN_A_TRANSACTION = {
    r"\bCONCURRENTLY\b": "CREATE/DROP INDEX CONCURRENTLY cannot run inside a transaction block",
    r"\bVACUUM\b": "VACUUM cannot run inside a transaction block",
    r"\bCALL\s+refresh_continuous_aggregate\b": "refresh_continuous_aggregate cannot run inside a transaction block",
    r"\bCALL\s+run_job\b": "run_job of a refresh policy cannot run inside a transaction block",
    r"\bCREATE\s+DATABASE\b": "CREATE DATABASE cannot run inside a transaction block",
    r"\bALTER\s+SYSTEM\b": "ALTER SYSTEM cannot run inside a transaction block",
    r"\bALTER\s+TYPE\s+\w+\s+ADD\s+VALUE\b": "a new enum value cannot be used in the transaction that adds it",
    r"\badd_columnstore_policy\b|\benable_columnstore\b": "TimescaleDB 2.18+ only; 2.13-2.17 serve PostgreSQL 16/17",
    r"\btsdb\.hypertable\b|\btimescaledb\.hypertable\b": "CREATE TABLE ... WITH (tsdb.hypertable) is 2.20+ only",
}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_statement_runs_in_one_transaction(path: Path) -> None:
    sql = _strip(path.read_text())
    for pattern, reason in NOT_IN_A_TRANSACTION.items():
        assert not re.search(pattern, sql, re.I), f"{path.name}: {reason}"


def continuous_aggregates() -> dict[str, str]:
    """Continuous aggregate name → its CREATE statement, from the .timescale.sql files."""
    found = {}
    for path in TIMESCALE_FILES:
        for statement in _statements(path.read_text()):
            match = re.match(r"CREATE MATERIALIZED VIEW (\w+)", statement, re.I)
            if match:
                found[match[1]] = statement
    return found


@pytest.mark.parametrize("name", sorted(continuous_aggregates()))
def test_continuous_aggregates_are_created_empty_real_time_and_bucketed(name: str) -> None:
    statement = " ".join(continuous_aggregates()[name].split())
    assert re.search(r"WITH NO DATA$", statement, re.I), "WITH DATA refreshes at once: not in a transaction block"
    assert re.search(r"timescaledb\.continuous\b", statement)
    assert re.search(r"timescaledb\.materialized_only\s*=\s*false", statement), "real-time is off by default (2.13+)"
    source = re.search(r"\bFROM\s+(\w+)", statement, re.I)
    assert source and source[1] in hypertables(), "a continuous aggregate reads a hypertable"
    bucket = rf"time_bucket\(INTERVAL '1 hour', {hypertables()[source[1]]}\)"
    assert re.search(rf"GROUP BY {bucket}", statement), "grouped by time_bucket on the hypertable's time column"
    assert not re.search(r"\bOVER\s*\(|WITHIN GROUP|\bDISTINCT\b", statement, re.I)


def _select_aliases(statement: str) -> list[str]:
    select = re.search(r"\bSELECT\b(.*?)\bFROM\b", statement, re.I | re.S)
    assert select
    return [re.split(r"\s+AS\s+", item, flags=re.I)[-1].strip() for item in _split_top(select[1])]


def plain_rollups() -> dict[str, str]:
    """Rollup table → key column, from the dimension list of the .plain.sql DO block."""
    text = "\n".join(p.read_text() for p in PLAIN_FILES)
    values = re.search(r"FOR dim IN SELECT \* FROM \(VALUES(.*?)\) AS d\(name, keycol\)", text, re.S)
    assert values, "the plain rollup tables are created from a (name, keycol) VALUES list"
    return {f"pass_rate_{n}_hourly": k for n, k in re.findall(r"\('(\w+)',\s*'(\w*)'\)", values[1])}


def test_both_paths_offer_the_relations_and_columns_the_stats_query_reads() -> None:
    wanted = {f"pass_rate_{g.value}_hourly": KEY_COLUMN[g] for g in GroupBy if g in KEY_COLUMN}
    rollups = {name: key or "market_id" for name, key in plain_rollups().items()}
    assert rollups == wanted
    caggs = continuous_aggregates()
    assert set(caggs) == set(wanted) | {"pass_rate_strip_lot_hourly"}  # GET /v1/strip-lots reads the last
    for name, key in wanted.items():
        extra = [] if key == "market_id" else [key]
        assert _select_aliases(caggs[name]) == ["bucket", "market_id", *extra, *COUNTS], name
    plain = "\n".join(p.read_text() for p in PLAIN_FILES)
    assert re.search(r"\s+".join(rf"{c} bigint NOT NULL," for c in COUNTS), plain), "rollup columns, in order"
