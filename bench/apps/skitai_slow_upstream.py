"""An upstream for bench/gateway.py's fan-out: every answer takes 50 ms (a sleep in one of 32
threads), a small JSON document, access log off. The port is given as --port=N."""
import time

import skitai


def app(environ, start_response):
    time.sleep(0.05)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"result": "ok"}']


if __name__ == "__main__":
    skitai.mount("/", app)
    skitai.log_off("/")
    skitai.run(threads=32)
