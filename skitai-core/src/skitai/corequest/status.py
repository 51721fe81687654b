"""`was.status()`: one worker's state as a small HTML page (for an admin route)."""
from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .was import Was


def status_rows(was: "Was") -> list[tuple[str, object]]:
    server = was.server
    engine = was.engine
    pool = server.pool
    services = was.services
    rows: list[tuple[str, object]] = [
        ("worker", server.worker_id),
        ("pid", os.getpid()),
        ("master pid", was.master_pid()),
        ("workers", server.config.workers),
        ("connections", len(server.connections)),
        ("threads", pool.size if pool is not None else 0),
        ("queue", pool.queued if pool is not None else 0),
        ("requests served", server.requests_served),
        ("corequests started", engine.started),
        ("corequests running", engine.running),
        ("background threads", getattr(services.get("Thread"), "size", 0)),
        ("background processes", getattr(services.get("Process"), "size", 0)),
        ("result cache entries", f"{len(engine.cache)} of {engine.cache.max_entries}"),
        ("result cache hits / misses", f"{engine.cache.hits} / {engine.cache.misses}"),
        ("services", ", ".join(was.service_names())),
    ]
    for name, value in engine.shared.snapshot().items():
        if isinstance(value, float):
            value = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value)) if value else "never"
        rows.append((f"shared: {name}", value))
    return rows


def render_status(was: "Was") -> str:
    import html  # here: html.entities, which it brings, is 0.5 MB of every worker that never renders this

    cells = "\n".join(f"<tr><th>{html.escape(str(name))}</th><td>{html.escape(str(value))}</td></tr>"
                      for name, value in status_rows(was))
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Skitai status</title></head>\n"
            f"<body><h1>Skitai worker {html.escape(was.server.worker_id)}</h1>\n<table>\n{cells}\n</table>"
            "</body></html>\n")
