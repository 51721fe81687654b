"""The alias kinds the plugin serves and what it refuses when a script declares them."""
from __future__ import annotations

import pytest

import skitai
from skitai.backends import AliasError, AliasTable, BackendRegistry
from skitai_dbi import plugin, set_pool_size
from skitai_dbi.settings import settings


@pytest.fixture
def aliases(tmp_path):
    registry = BackendRegistry()
    plugin.skitai_register_backends(backends=registry)
    return AliasTable(registry, str(tmp_path))


def test_postgresql_and_sqlite_kinds_are_served_by_the_plugin(aliases, tmp_path):
    assert aliases.add("@pg", skitai.DB_PGSQL, "postgres:1234@172.30.0.1:5432/test 20").members[0].database == "test"
    assert aliases.add("@lite", skitai.DB_SQLITE3, "data/db1").members[0].path == str(tmp_path / "data" / "db1")
    assert {kind.plugin for kind in aliases.backends.kinds.values()} == {"skitai-dbi"}


def test_a_postgresql_member_without_a_database_is_refused(aliases):
    with pytest.raises(AliasError, match=r"alias @pg: member postgres@db:5432 1 names no database"):
        aliases.add("@pg", skitai.DB_PGSQL, ["postgres@db:5432/test", "postgres@db:5432"])


def test_an_sqlite_memory_database_is_refused(aliases):
    with pytest.raises(AliasError, match="new empty database per connection"):
        aliases.add("@lite", skitai.DB_SQLITE3, ":memory:")


def test_the_pool_size_is_at_least_one():
    with pytest.raises(ValueError, match="at least one connection"):
        set_pool_size(0)
    assert settings.pool_size >= 1
