"""A WSGI app whose requests cost the server's CPU far more than the load client's.

`hello-scaling` asks how far a second worker process takes Skitai on two cores, but on a
two-CPU machine wrk -t2 runs on the same two cores: a hello request costs wrk about a third of
what it costs the server, so wrk's share, not the server, bounds the ratio there. Each request
here renders a 2,000-item list (about 0.3 ms of Python, a small page's worth), so the client's
share drops to a few percent and the ratio shows what the process model does with the cores
(`work-scaling`, issue 20's goal 5). The work is a fixed count, not a time, so every server and
run does the same.
"""

ITEMS = 2000


def app(env, start_response):
    body = "".join([f"<li>{i} of {ITEMS}</li>" for i in range(ITEMS)]).encode()
    start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))])
    return [body]
