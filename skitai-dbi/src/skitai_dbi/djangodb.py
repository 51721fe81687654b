"""The DJANGO alias kind: a Django project's default database as a `was.db` alias.

    skitai.alias("@django", skitai.DJANGO, "mydjango/mydjango/settings.py")
    with was.db("@django") as db: db.execute("SELECT ... FROM auth_user ...")

The member is the project's settings module (relative to the script's folder). Its
`DATABASES["default"]` is read by importing the module as Django would (`mydjango.settings`
with the project's folder on `sys.path`, when the settings folder is a package), without
configuring Django: the script may mount the project's app or not. A PostgreSQL or SQLite default
database becomes an alias of that kind (`Database.alias` answers it in its place); another engine
is refused when the script declares the alias. A relative SQLite `NAME` is taken relative to the
project's folder (the one holding manage.py), where Django's `BASE_DIR` usually points.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
from typing import Any

from skitai.backends import DB_PGSQL, DB_SQLITE3, Alias, Member

from .members import check_postgresql, check_sqlite

ENGINES = {"django.db.backends.postgresql": DB_PGSQL, "django.db.backends.postgresql_psycopg2": DB_PGSQL,
           "django.db.backends.sqlite3": DB_SQLITE3}


def django_database(alias: Alias) -> Alias:
    """The PostgreSQL or SQLite alias a DJANGO alias stands for (same name)."""
    if len(alias.members) != 1:
        raise ValueError("a DJANGO alias has one member: the project's settings.py")
    path = alias.members[0].path
    database = default_database(path)
    engine = database.get("ENGINE", "")
    kind = ENGINES.get(engine)
    if kind is None:
        raise ValueError(f"{path}: the default database's ENGINE {engine!r} is not one skitai-dbi serves "
                         f"({', '.join(sorted(ENGINES))})")
    if kind == DB_SQLITE3:
        name = os.fspath(database.get("NAME") or "")
        if not name:
            raise ValueError(f"{path}: the default SQLite database has no NAME")
        member = Member(path=os.path.join(project_folder(path), os.path.expanduser(name)))
        resolved = Alias(alias.name, kind, (member,))
        check_sqlite(resolved)
    else:
        port = str(database.get("PORT") or "")
        member = Member(host=database.get("HOST") or "", port=int(port) if port else None,
                        user=database.get("USER") or "", password=database.get("PASSWORD") or "",
                        database=database.get("NAME") or "")
        resolved = Alias(alias.name, kind, (member,))
        check_postgresql(resolved)
    return resolved


def project_folder(settings_path: str) -> str:
    """The folder holding manage.py: above the settings package, or the settings' own folder
    when it is no package."""
    folder = os.path.dirname(settings_path)
    if os.path.isfile(os.path.join(folder, "__init__.py")):
        return os.path.dirname(folder)
    return folder


@functools.lru_cache(maxsize=None)
def default_database(settings_path: str) -> dict[str, Any]:
    """`DATABASES["default"]` of a settings module, read once per process."""
    if not os.path.isfile(settings_path):
        raise ValueError(f"no Django settings module at {settings_path}")
    try:
        settings = _import(settings_path)
    except Exception as error:  # the script stops naming the settings' own error
        raise ValueError(f"importing {settings_path} failed: {type(error).__name__}: {error}") from error
    databases = getattr(settings, "DATABASES", None)
    if not isinstance(databases, dict) or "default" not in databases:
        raise ValueError(f"{settings_path} defines no DATABASES['default']")
    return dict(databases["default"])


def _import(settings_path: str) -> Any:
    """The settings module, imported by its dotted name with the project's folder on sys.path
    when its folder is a package (relative imports work, as under Django), else as a file.
    The project's modules are taken out of `sys.modules` again: the script may mount the same
    project later, or another one whose package has the same name."""
    folder = os.path.dirname(settings_path)
    module = os.path.splitext(os.path.basename(settings_path))[0]
    if not os.path.isfile(os.path.join(folder, "__init__.py")):
        spec = importlib.util.spec_from_file_location(f"_skitai_django_settings_{module}", settings_path)
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        return loaded
    package, root = os.path.basename(folder), os.path.dirname(folder)

    def ours(name: str) -> bool:
        return name == package or name.startswith(package + ".")

    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if ours(name)}
    sys.path.insert(0, root)
    try:
        return importlib.import_module(f"{package}.{module}")
    finally:
        sys.path.remove(root)
        for name in [name for name in sys.modules if ours(name)]:
            del sys.modules[name]
        sys.modules.update(saved)
