"""The gateway under test for bench/gateway.py: a Skitai app (4 threads, access log off) that
calls the upstreams named by the environment (FAST_UPSTREAM, SLOW_UPSTREAM, as host:port):

- /fanout: 20 `was.get` calls to the slow upstream at once, collected together;
- /was: one `was.get` to the fast upstream;
- /was-h2: the same call over HTTP/2 (h2c with prior knowledge: an alias of the gateway's kind
  "h2c" whose member is the fast upstream, which speaks HTTP/2 when skitai-http2 is installed);
- /requests: the same call made with `requests.Session` in the WSGI thread (one session per
  thread), what apps do without corequests;
- /none: no call at all: what the server costs alone, the other half of was.get's ceiling.
The port is given as --port=N; BENCH_THREADS sets the app threads (default 4)."""
import json
import os
import threading

import requests

import skitai
from skitai import was

FAST = f"http://{os.environ['FAST_UPSTREAM']}/"
SLOW = f"http://{os.environ['SLOW_UPSTREAM']}/"
sessions = threading.local()


def fanout():
    return len(was.Tasks([was.get(SLOW) for _ in range(20)]).fetch(timeout=10))


def with_was():
    return was.get(FAST).fetch()


def with_was_h2():
    return was.get("@fast_h2/").fetch()


def with_requests():
    if not hasattr(sessions, "session"):
        sessions.session = requests.Session()
    return sessions.session.get(FAST, timeout=10).json()


def without_call():
    return None


ROUTES = {"/fanout": fanout, "/was": with_was, "/was-h2": with_was_h2, "/requests": with_requests,
          "/none": without_call}


def app(environ, start_response):
    body = json.dumps(ROUTES[environ["PATH_INFO"]]()).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    skitai.alias("@fast_h2", "h2c", os.environ["FAST_UPSTREAM"])
    skitai.mount("/", app)
    skitai.log_off("/")
    skitai.run(threads=int(os.environ.get("BENCH_THREADS", "4")))
