"""`db_server(aliases, ...)`: the test app (apps/dbapp.py) in a real Skitai server process,
and `call(server, path, body)` to POST it JSON."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx

from skitai.testing import ServerProcess

APP = Path(__file__).parent / "apps" / "dbapp.py"


def db_server(aliases: list, *, pool_size: int | None = None, workers: int = 1,
              folder: Path | None = None, env: dict | None = None) -> ServerProcess:
    """`folder`: run a copy of the app from there (file members are relative to the script);
    `env`: more environment variables for the server."""
    env = {**(env or {}), "DBI_ALIASES": json.dumps(aliases), "DBI_WORKERS": str(workers)}
    if pool_size is not None:
        env["DBI_POOL_SIZE"] = str(pool_size)
    script = APP
    if folder is not None:
        script = folder / APP.name
        shutil.copyfile(APP, script)
    return ServerProcess(str(script), env=env)


def call(server: ServerProcess, path: str, body: dict | None = None, timeout: float = 20) -> tuple[int, object]:
    response = httpx.post(server.url(path), json=body or {}, timeout=timeout)
    return response.status_code, response.json()
