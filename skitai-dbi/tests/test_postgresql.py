"""was.db on PostgreSQL in a real server: rows, bound parameters, one(), 409 on a unique
violation, failed results with the database's message, timeouts that cancel the statement on
the server, a pool that survives its backends being terminated, lb and map over members."""
from __future__ import annotations

import pytest
from dbserver import call, db_server
from pgutil import MEMBER, requires_postgresql

from skitai.testing import wait_for

pytestmark = requires_postgresql


@pytest.fixture(scope="module")
def server():
    aliases = [["@pg", "postgresql", MEMBER], ["@pair", "postgresql", [f"{MEMBER} 3", f"{MEMBER} 1"]]]
    with db_server(aliases, pool_size=3) as started:
        yield started


def sql(server, statement, params=None, **options):
    return call(server, "/sql", {"alias": "@pg", "sql": statement, "params": params, **options})


def test_rows_have_key_and_attribute_access_and_parameters_are_bound(server, schema):
    schema.sql(f"CREATE TABLE {schema.name}.weather (city text, t_high int, t_low int)")
    schema.sql(f"INSERT INTO {schema.name}.weather VALUES ('San Francisco', 46, 50), ('Hayward', 37, 54)")
    assert sql(server, f"SELECT city, t_high, t_low FROM {schema.name}.weather ORDER BY city") == (200, [
        {"city": "Hayward", "t_high": 37, "t_low": 54}, {"city": "San Francisco", "t_high": 46, "t_low": 50}])
    assert sql(server, f"SELECT city, t_low FROM {schema.name}.weather ORDER BY city", how="attributes",
               columns=["city", "t_low"]) == (200, [["Hayward", 54], ["San Francisco", 50]])
    hostile = "x'); DROP TABLE weather; --"
    assert sql(server, f"INSERT INTO {schema.name}.weather VALUES (%s, %s, %s)", [hostile, 1, 2],
               how="commit") == (200, "committed")
    assert schema.sql(f"SELECT city FROM {schema.name}.weather WHERE t_high = 1") == [(hostile,)]


def test_one_answers_the_single_row_and_410_otherwise(server, schema):
    schema.sql(f"CREATE TABLE {schema.name}.pets (id serial PRIMARY KEY, name text)")
    assert sql(server, f"INSERT INTO {schema.name}.pets (name) VALUES (%s) RETURNING id", ["Rex"],
               how="one") == (200, {"id": 1})
    assert sql(server, f"SELECT name FROM {schema.name}.pets WHERE id = %s", [2], how="one")[0] == 410
    schema.sql(f"INSERT INTO {schema.name}.pets (name) VALUES ('Tom')")
    assert sql(server, f"SELECT name FROM {schema.name}.pets", how="one")[0] == 410


def test_a_unique_or_primary_key_violation_is_409(server, schema):
    schema.sql(f"CREATE TABLE {schema.name}.users (id int PRIMARY KEY, email text UNIQUE)")
    schema.sql(f"INSERT INTO {schema.name}.users VALUES (1, 'a@example.com')")
    status, body = sql(server, f"INSERT INTO {schema.name}.users VALUES (%s, %s) RETURNING id", [1, "b@x"], how="one")
    assert status == 409 and "duplicate key" in body["error"]
    status, body = sql(server, f"INSERT INTO {schema.name}.users VALUES (%s, %s)", [2, "a@example.com"],
                       how="commit")
    assert status == 409 and "users_email_key" in body["error"]
    [result] = sql(server, f"INSERT INTO {schema.name}.users VALUES (1, 'c@x')", how="dispatch")[1]
    assert (result["status"], result["status_code"], result["reason"]) == (4, 409, "Conflict")


def test_other_database_errors_are_failed_results_with_the_message(server, schema):
    [result] = sql(server, f"SELECT nothing FROM {schema.name}.missing", how="dispatch")[1]
    assert result["status"] == 1 and result["status_code"] == 500
    assert f'relation "{schema.name}.missing" does not exist' in result["reason"]
    status, body = sql(server, "SELECT 1/0")
    assert status == 500 and body["error"].startswith("DivisionByZero: division by zero")
