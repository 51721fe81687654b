"""The spec's hello-world WSGI app, shared by every server in the bench.

Peers load it as `hello:app` (gunicorn, waitress, hypercorn, granian); the two
Skitai launch scripts import it so all servers run the very same callable.
"""


def app(env, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello World"]
