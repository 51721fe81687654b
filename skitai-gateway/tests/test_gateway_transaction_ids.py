"""API transaction ids across corequests: a chain of real Skitai processes (edge -> middle ->
leaf, by `was.get`) forwards the global id and numbers the local one as the manual shows, and
every hop writes both in its request log; within one server, every kind of call forwards them."""
import contextlib
import re
import textwrap

import httpx

import skitai
from skitai import was

HOP = '''
import json
import os

import skitai
from skitai import was


def app(environ, start_response):
    transaction = environ["skitai.transaction"]
    below = [was.get(os.environ["NEXT"] + environ["PATH_INFO"]).fetch(timeout=20)
             for _ in range(int(os.environ["CALLS"]))]
    body = json.dumps({
        "hop": os.environ["HOP"], "own": [transaction.gtxid, transaction.ltxid], "below": below,
        "received": [environ.get("HTTP_X_GTXN_ID"), environ.get("HTTP_X_LTXN_ID")],
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


if __name__ == "__main__":
    skitai.mount("/", app)
    skitai.run(threads=4)
'''


def logged_ids(server):
    """(uri, gtxid, ltxid) of each request log line of a stopped server."""
    lines = [line.split(" ") for line in server.output.splitlines() if " HTTP/1.1 " in line]
    return [(fields[5], fields[10], fields[11]) for fields in lines]


def test_a_three_hop_chain_forwards_and_logs_the_ids(tmp_path):
    from skitai.testing import ServerProcess

    script = tmp_path / "hop.py"
    script.write_text(textwrap.dedent(HOP))
    with contextlib.ExitStack() as stack:
        leaf = stack.enter_context(ServerProcess(str(script), env={"HOP": "leaf", "CALLS": "0", "NEXT": ""}))
        middle = stack.enter_context(ServerProcess(str(script), env={"HOP": "middle", "CALLS": "1",
                                                                     "NEXT": leaf.url("")}))
        edge = stack.enter_context(ServerProcess(str(script), env={"HOP": "edge", "CALLS": "2",
                                                                   "NEXT": middle.url("")}))
        response = httpx.get(edge.url("/chain"), timeout=60)
        assert response.status_code == 200, edge.output
        answer = response.json()
    gtxid = answer["own"][0]
    assert re.fullmatch(r"GTID-P[0-9a-f]{8}-R\d+", gtxid)
    assert answer["received"] == [None, None] and answer["own"] == [gtxid, 1000]
    first, second = answer["below"]
    # the edge's calls are 1001 and 1002 on the wire, 2001 and 2002 where they arrive
    assert first["received"] == [gtxid, "1001"] and first["own"] == [gtxid, 2001]
    assert second["received"] == [gtxid, "1002"] and second["own"] == [gtxid, 2002]
    # 2001's call arrives as 3002, 2002's as 3003 (the manual's example)
    assert first["below"] == [{"hop": "leaf", "received": [gtxid, "2002"], "own": [gtxid, 3002], "below": []}]
    assert second["below"] == [{"hop": "leaf", "received": [gtxid, "2003"], "own": [gtxid, 3003], "below": []}]
    # every hop logged the ids (the servers flushed their logs when they stopped)
    assert logged_ids(edge) == [("/chain", gtxid, "1000")], edge.output
    assert sorted(logged_ids(middle)) == [("/chain", gtxid, "2001"), ("/chain", gtxid, "2002")], middle.output
    assert sorted(logged_ids(leaf)) == [("/chain", gtxid, "3002"), ("/chain", gtxid, "3003")], leaf.output


def test_every_kind_of_call_forwards_the_ids_and_the_cache_ignores_them(serve, upstream):
    a, b = upstream("a"), upstream("b")

    def call():
        direct = was.get(a.url("/echo")).fetch()["txn"]
        balanced = was.post.lb("@both/echo", {"x": 1}).fetch()["txn"]
        mapped = [result.data["txn"] for result in was.get.map("@both/echo").dispatch(timeout=10)]
        own = was.get(a.url("/echo"), headers={"X-Ltxn-Id": "7"}).fetch()["txn"]
        cached = [was.get(a.url("/echo?c=1")).dispatch(cache=60).cached for _ in range(2)]
        return [direct, balanced, mapped, own, cached]

    gateway = serve({"/": call})
    gateway.kernel.aliases.add("@both", skitai.PROTO_HTTP, [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"])
    response = httpx.get(gateway.url("/"), headers={"X-Gtxn-Id": "GTID-T1", "X-Ltxn-Id": "1001"}, timeout=30)
    assert response.status_code == 200, response.text
    direct, balanced, mapped, own, cached = response.json()
    assert direct == ["GTID-T1", "2002"] and balanced == ["GTID-T1", "2003"]
    assert mapped == [["GTID-T1", "2004"], ["GTID-T1", "2005"]]   # one number per member
    assert own == ["GTID-T1", "7"]                                 # a call's own header stays
    assert cached == [False, True]


def test_a_call_outside_a_request_sends_no_ids(serve, upstream):
    up = upstream()
    gateway = serve({})
    assert gateway.server.was.get(up.url("/echo")).fetch(timeout=10)["txn"] == [None, None]
