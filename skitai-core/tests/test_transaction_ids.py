"""API transaction ids: each request gets a global and a local id (new at the edge, carried on
from the `X-Gtxn-Id`/`X-Ltxn-Id` an upstream Skitai sent), seen by the app in
`environ["skitai.transaction"]` and `skitai.transactions.current_transaction()`, numbered for its
calls, and written in the request log line."""
import re
import textwrap
import threading

import httpx
import pytest

from skitai.testing import ServerProcess, wait_for
from skitai.transactions import Transaction

SCRIPT = '''
import json
import skitai
from skitai.transactions import current_transaction


def app(environ, start_response):
    transaction = environ["skitai.transaction"]
    calls = [dict(transaction.call_headers()) for _ in range(2)]
    body = json.dumps({"gtxid": transaction.gtxid, "ltxid": transaction.ltxid,
                       "same": current_transaction() is transaction, "calls": calls}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


if __name__ == "__main__":
    skitai.mount("/", app)
    skitai.run(threads=2)
'''

GTID = re.compile(r"GTID-P[0-9a-f]{8}-R\d+")


@pytest.fixture
def server(tmp_path):
    path = tmp_path / "serve.py"
    path.write_text(textwrap.dedent(SCRIPT))
    with ServerProcess(str(path)) as server:
        yield server


def log_ids(server, path):
    """(gtxid, ltxid) of the request log lines of `path`."""
    lines = [line.split(" ") for line in server.output.splitlines() if " HTTP/1.1 " in line]
    return [(fields[10], fields[11]) for fields in lines if fields[5] == path]


def test_an_edge_request_starts_a_chain_and_numbers_its_calls(server):
    first = httpx.get(server.url("/a"), timeout=10).json()
    second = httpx.get(server.url("/b"), timeout=10).json()
    assert GTID.fullmatch(first["gtxid"]) and GTID.fullmatch(second["gtxid"]) and first["gtxid"] != second["gtxid"]
    assert first["ltxid"] == 1000 and first["same"] is True
    assert first["calls"] == [{"X-Gtxn-Id": first["gtxid"], "X-Ltxn-Id": "1001"},
                              {"X-Gtxn-Id": first["gtxid"], "X-Ltxn-Id": "1002"}]
    wait_for(lambda: log_ids(server, "/b"), timeout=10)   # the log is written once a second
    assert log_ids(server, "/a") == [(first["gtxid"], "1000")] and log_ids(server, "/b") == [(second["gtxid"], "1000")]


def test_ids_an_upstream_skitai_sent_go_one_level_deeper(server):
    answer = httpx.get(server.url("/deeper"), headers={"X-Gtxn-Id": "GTID-C3-R8", "X-Ltxn-Id": "2002"},
                       timeout=10).json()
    assert (answer["gtxid"], answer["ltxid"]) == ("GTID-C3-R8", 3002)
    assert [call["X-Ltxn-Id"] for call in answer["calls"]] == ["3003", "3004"]
    wait_for(lambda: log_ids(server, "/deeper"), timeout=10)
    assert log_ids(server, "/deeper") == [("GTID-C3-R8", "3002")]


@pytest.mark.parametrize("headers, kept", [
    ({"X-Gtxn-Id": "GTID with spaces", "X-Ltxn-Id": "1001"}, None),
    ({"X-Gtxn-Id": "x" * 129}, None),
    ({"X-Gtxn-Id": "GTID-C3-R8", "X-Ltxn-Id": "-5"}, "GTID-C3-R8"),
    ({"X-Gtxn-Id": "GTID-C3-R8"}, "GTID-C3-R8"),
    ({"X-Ltxn-Id": "2001"}, None),
])
def test_ids_that_are_not_well_formed_start_afresh(server, headers, kept):
    answer = httpx.get(server.url("/"), headers=headers, timeout=10).json()
    assert answer["ltxid"] == 1000
    assert answer["gtxid"] == kept if kept else GTID.fullmatch(answer["gtxid"])


def test_calls_from_several_threads_get_distinct_numbers():
    transaction = Transaction.for_request([("x-gtxn-id", "GTID-C1-R1"), ("x-ltxn-id", "1001")])
    numbers, lock = [], threading.Lock()

    def call():
        for _ in range(500):
            value = dict(transaction.call_headers())["X-Ltxn-Id"]
            with lock:
                numbers.append(int(value))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(numbers) == list(range(2002, 2002 + 2000))
