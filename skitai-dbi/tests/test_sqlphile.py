"""SQLPhile's query builder on was.db and was.transaction in a real server (PostgreSQL and
SQLite), in the manual's "Using SQLPhile for Querying" style, and the error that names the extra
when sqlphile is not installed."""
from __future__ import annotations

import sys

import pytest
from dbserver import call, db_server
from pgutil import MEMBER, requires_postgresql

import skitai
from skitai.backends import Alias, Member
from skitai_dbi import sqlphile_builder
from skitai_dbi.driver import Session

NAMES = ["Ann", "Bob", "O'Brien", "Obi", "Tom"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sqlphile-app")
    with db_server([["@pg", "postgresql", MEMBER], ["@lite", "sqlite3", "lite.db"]], folder=folder) as started:
        yield started


def manual_query(server, alias, users, profiles, name, limit):
    """The manual's example: get().select().filter().order_by()[:limit].execute().fetch()."""
    return call(server, "/phile", {"alias": alias, "chain": [
        ["get", ["a.id, b.name"]], ["select", [f"{users} a, {profiles} b"]],
        ["filter", [], {"b__name__contains": name}], ["filter", ["a.id = b.user_id"]],
        ["order_by", ["-a.id"]], ["slice", None, limit]]})


def fill(server, alias, users, profiles):
    chains = [[["insert", [users]], ["set", [], {"id": number}]] for number in range(1, 6)]
    chains += [[["insert", [profiles]], ["set", [], {"user_id": number, "name": name}]]
               for number, name in enumerate(NAMES, 1)]
    assert call(server, "/phile", {"alias": alias, "chains": chains}) == (200, "committed")


@requires_postgresql
def test_the_manuals_builder_style_on_postgresql(server, schema):
    users, profiles = f"{schema.name}.users", f"{schema.name}.profiles"
    schema.sql(f"CREATE TABLE {users} (id int PRIMARY KEY)")
    schema.sql(f"CREATE TABLE {profiles} (user_id int REFERENCES {users}, name text)")
    fill(server, "@pg", users, profiles)
    assert manual_query(server, "@pg", users, profiles, "b", 10) == (200, [{"id": 4, "name": "Obi"},
                                                                           {"id": 2, "name": "Bob"}])
    assert manual_query(server, "@pg", users, profiles, "b", 1) == (200, [{"id": 4, "name": "Obi"}])
    assert manual_query(server, "@pg", users, profiles, "'", 10) == (200, [{"id": 3, "name": "O'Brien"}])
    chain = [["update", [profiles]], ["set", [], {"name": "Bobby"}], ["filter", [], {"user_id": 2}]]
    assert call(server, "/phile", {"alias": "@pg", "chains": [chain]}) == (200, "committed")
    assert schema.sql(f"SELECT name FROM {profiles} WHERE user_id = 2") == [("Bobby",)]


def test_the_manuals_builder_style_on_sqlite(server):
    assert call(server, "/sql", {"alias": "@lite", "sql": "CREATE TABLE users (id INTEGER PRIMARY KEY)",
                                 "how": "commit"})[0] == 200
    assert call(server, "/sql", {"alias": "@lite", "sql": "CREATE TABLE profiles (user_id INTEGER, name TEXT)",
                                 "how": "commit"})[0] == 200
    fill(server, "@lite", "users", "profiles")
    assert manual_query(server, "@lite", "users", "profiles", "O'", 10) == (200, [{"id": 3, "name": "O'Brien"}])
    chain = [["delete", ["profiles"]], ["filter", [], {"name__startswith": "O"}]]
    assert call(server, "/phile", {"alias": "@lite", "chains": [chain]}) == (200, "committed")
    assert call(server, "/phile", {"alias": "@lite", "chain": [["select", ["profiles"]], ["get", ["name"]],
                                                               ["order_by", ["name"]]]}) == (
        200, [{"name": "Ann"}, {"name": "Bob"}, {"name": "Tom"}])


def test_without_sqlphile_the_error_names_the_extra(monkeypatch):
    sqlphile_builder._sqlphile.cache_clear()
    monkeypatch.setitem(sys.modules, "sqlphile", None)  # what `import sqlphile` sees when it is not installed
    session = Session(None, Alias("@pg", skitai.DB_PGSQL, (Member("db", 5432, database="x"),)), True, None, None)
    try:
        with pytest.raises(ImportError, match=r'pip install "skitai-dbi\[sqlphile\]"'):
            session.select("users")
    finally:
        sqlphile_builder._sqlphile.cache_clear()
