"""The app under test for bench/dbi.py: a Skitai app (4 threads, access log off) on the
PostgreSQL member PG_MEMBER (user@host:port/database) and its table PG_TABLE (id, label):

- /one: one `was.db` query of `SELECT pg_sleep(0.05)`;
- /fanout: ten such queries started at once through `was.db`, collected together;
- /was: one indexed `SELECT ... WHERE id = %s` through `was.db`;
- /psycopg2: the same SELECT with plain psycopg2 in the WSGI thread (one connection per
  thread), what apps do without corequests;
- /none and /thread: no query, and one `was.Thread(noop)` corequest: what the server and a
  corequest's hand-off between the app's thread and the loop cost without a database.
The port is given as --port=N."""
import json
import os
import random
import threading

import psycopg2

import skitai
from skitai import was

TABLE = os.environ["PG_TABLE"]
ROWS = int(os.environ["PG_ROWS"])
SELECT = f"SELECT id, label FROM {TABLE} WHERE id = %s"
SLEEP = "SELECT pg_sleep(0.05)"
connections = threading.local()


def one():
    return len(was.db("@pg").execute(SLEEP).fetch(timeout=10))


def fanout():
    with was.db("@pg") as db:
        tasks = [db.execute(SLEEP) for _ in range(10)]
    return len(was.Tasks(tasks).fetch(timeout=10))


def with_was():
    return was.db("@pg").execute(SELECT, (random.randint(1, ROWS),)).one(timeout=10)


def with_psycopg2():
    if not hasattr(connections, "connection"):
        user_host, database = os.environ["PG_MEMBER"].rsplit("/", 1)
        user, host_port = user_host.split("@")
        host, port = host_port.split(":")
        connections.connection = psycopg2.connect(host=host, port=port, user=user, dbname=database)
        connections.connection.autocommit = True
    with connections.connection.cursor() as cursor:
        cursor.execute(SELECT, (random.randint(1, ROWS),))
        row = cursor.fetchone()
    return {"id": row[0], "label": row[1]}


def noop():
    return None


def thread_corequest():
    return was.Thread(noop).fetch(timeout=10)


ROUTES = {"/none": noop, "/thread": thread_corequest, "/one": one, "/fanout": fanout, "/was": with_was,
          "/psycopg2": with_psycopg2}


def app(environ, start_response):
    body = json.dumps(ROUTES[environ["PATH_INFO"]]()).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    skitai.alias("@pg", skitai.DB_PGSQL, os.environ["PG_MEMBER"])
    skitai.mount("/", app)
    skitai.log_off("/")
    skitai.run(threads=4)
