"""A hello app that tells which of the plugins' heavy libraries its worker has imported:
`/` as it is, `/use/<name>` after touching `skitai.was.<name>` (a service's first use)."""
import json
import sys

import skitai

# what the installed plugins may import only when an app uses a feature that needs it
HEAVY = ("aiohttp", "httpx", "jwt", "cryptography", "aioquic", "redis", "psycopg2", "pymongo")


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith("/use/"):
        getattr(skitai.was, path[len("/use/"):])
    body = json.dumps(sorted(name for name in HEAVY if name in sys.modules)).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


skitai.mount("/", app)
skitai.run(address="127.0.0.1", port=5000)
