"""An upstream for bench/gateway_clients.py: Skitai answering a small JSON document on the
event-loop thread (threads=0), access log off. The port is given as --port=N."""
import skitai


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"result": "ok"}']


if __name__ == "__main__":
    skitai.mount("/", app)
    skitai.log_off("/")
    skitai.run(threads=0)
