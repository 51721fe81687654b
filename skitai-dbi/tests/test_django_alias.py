"""The DJANGO alias: a Django project's default database (SQLite or PostgreSQL) through was.db
and was.transaction, read from its settings module without configuring Django; engines the
plugin does not serve are refused when the alias is declared."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dbserver import call, db_server
from pgutil import DATABASE, HOST, PORT, USER, requires_postgresql

import skitai
from skitai.backends import AliasError, AliasTable, BackendRegistry
from skitai_dbi import plugin
from skitai_dbi.djangodb import django_database

PROJECT = Path(__file__).parent / "projects" / "djsite"
SETTINGS = "djsite/djsite/settings.py"


@pytest.fixture
def folder(tmp_path):
    """A copy of the project beside the app script (its SQLite file lands in the copy)."""
    shutil.copytree(PROJECT, tmp_path / "djsite", ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
    return tmp_path


def manage(project: Path, *arguments: str) -> str:
    """Run the project's manage.py (Django configured in its own process): its output."""
    return subprocess.run([sys.executable, "manage.py", *arguments, "--verbosity=0"], cwd=project, check=True,
                          timeout=120, capture_output=True, text=True).stdout


def aliases(folder: Path) -> AliasTable:
    registry = BackendRegistry()
    plugin.skitai_register_backends(backends=registry)
    return AliasTable(registry, str(folder))


def test_a_sqlite_project_is_served_as_the_project_uses_it(folder):
    """Django creates its tables and a user; was.db reads them, a transaction writes, and
    Django sees what it wrote."""
    project = folder / "djsite"
    manage(project, "migrate")
    manage(project, "shell", "-c", "from django.contrib.auth.models import User; User.objects.create_user('hans')")
    with db_server([["@django", "django", SETTINGS]], folder=folder) as server:
        assert call(server, "/sql", {"alias": "@django", "sql": "SELECT username FROM auth_user"}) == (
            200, [{"username": "hans"}])
        steps = [["execute", "UPDATE auth_user SET first_name = ? WHERE username = ?", ["Hans", "hans"]], ["commit"]]
        assert call(server, "/transaction", {"alias": "@django", "steps": steps}) == (200, [])
    assert manage(project, "shell", "-c", "from django.contrib.auth.models import User; "
                  "print(User.objects.get().first_name)") == "Hans\n"


@requires_postgresql
def test_a_postgresql_project_is_served(folder, schema):
    schema.sql(f"CREATE TABLE {schema.name}.polls (question text)")
    schema.sql(f"INSERT INTO {schema.name}.polls VALUES ('What is up?')")
    database = {"ENGINE": "django.db.backends.postgresql", "NAME": DATABASE, "USER": USER, "HOST": HOST,
                "PORT": str(PORT)}
    with db_server([["@django", "django", SETTINGS]], folder=folder,
                   env={"DJSITE_DATABASE": json.dumps(database)}) as server:
        assert call(server, "/sql", {"alias": "@django", "sql": f"SELECT question FROM {schema.name}.polls",
                                     "how": "one"}) == (200, {"question": "What is up?"})
        status, body = call(server, "/sql", {"alias": "@django", "sql": "SELECT current_database() AS db, %s AS x",
                                             "params": ["bound"], "how": "one"})
        assert (status, body) == (200, {"db": DATABASE, "x": "bound"})


def test_the_alias_stands_for_the_settings_database(folder, monkeypatch):
    monkeypatch.delenv("DJSITE_DATABASE", raising=False)
    alias = aliases(folder).add("@django", skitai.DJANGO, SETTINGS)
    resolved = django_database(alias)
    assert (resolved.name, resolved.kind) == ("@django", skitai.DB_SQLITE3)
    assert resolved.members[0].path == str(folder / "djsite" / "db.sqlite3")
    assert "djsite" not in sys.modules and "djsite.settings" not in sys.modules  # Django's import is untouched


def test_an_engine_the_plugin_does_not_serve_is_refused(folder):
    settings = folder / "other.py"
    settings.write_text('DATABASES = {"default": {"ENGINE": "django.db.backends.mysql", "NAME": "x"}}\n')
    with pytest.raises(AliasError, match=r"alias @django: .*other.py: the default database's ENGINE "
                                         r"'django.db.backends.mysql' is not one skitai-dbi serves"):
        aliases(folder).add("@django", skitai.DJANGO, "other.py")
    with pytest.raises(AliasError, match="no Django settings module at"):
        aliases(folder).add("@django", skitai.DJANGO, "nowhere/settings.py")
