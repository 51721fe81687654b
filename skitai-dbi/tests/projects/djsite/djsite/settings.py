"""A small Django project for the DJANGO alias tests: its default database is SQLite beside
manage.py, or the one DJSITE_DATABASE gives as JSON (the tests' PostgreSQL)."""
import json
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "skitai-tests-only"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if "DJSITE_DATABASE" in os.environ:
    DATABASES = {"default": json.loads(os.environ["DJSITE_DATABASE"])}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
