"""Migrations run by one command, once each, on the path the schema was created on."""

from __future__ import annotations

import pytest

from schemas.settings import Settings
from storage.migrate import discover, migrate
from tests.helpers import rows

pytestmark = pytest.mark.integration


def test_migrate_applies_every_version_once_and_is_then_a_no_op(db_dsn):
    # db_dsn is already migrated by its fixture
    assert migrate(db_dsn, Settings()) == []
    recorded = rows(db_dsn, "SELECT version, variant FROM schema_migrations ORDER BY version")
    assert [v for v, _ in recorded] == [m.version for m in discover()]
    assert len({variant for _, variant in recorded}) == 1  # one path for the whole schema


def test_a_bad_setting_never_reaches_the_sql():
    with pytest.raises(ValueError, match="interval"):
        from storage.migrate import render

        render("{{retention}}", Settings(timescale_retention="1 day'; DROP TABLE readings; --"))
