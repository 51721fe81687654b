"""was.db on MongoDB in a real server process, with pymongo's AsyncMongoClient.

No MongoDB server is packaged in any registry this project uses, so the driver is tested against
`mockupdb`, a MongoDB wire-protocol server: each test reads the commands pymongo sent over the
socket and answers them as a mongod would. The last test runs the same calls against a real
`mongod` when SKITAI_TEST_MONGODB_URL ("host:port") is set; it is skipped otherwise, also under
CI, which has no mongod (the skip names the variable).
"""
from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor

import pymongo
import pytest
from bson import ObjectId
from dbserver import call, db_server
from mockupdb import MockupDB

from skitai.testing import free_port

CURSOR_ID = 42


@pytest.fixture(scope="module")
def mongod():
    mock = MockupDB(auto_ismaster={"maxWireVersion": 21}, request_timeout=10)
    mock.run()
    yield mock
    mock.stop()


@pytest.fixture(scope="module")
def server(mongod):
    aliases = [["@mongo", "mongodb", f"127.0.0.1:{mongod.port}/test"],
               ["@down", "mongodb", f"127.0.0.1:{free_port()}/test"]]
    with db_server(aliases, pool_size=3) as started:
        yield started


def exchange(mongod, server, calls, *replies, **options):
    """POST `calls` to /mongo while answering the commands pymongo sends with `replies` (a
    reply document, or a function of the request that answers it): (HTTP answer, commands)."""
    commands = []
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(call, server, "/mongo", {"alias": "@mongo", "calls": calls, **options})
        for reply in replies:
            request = mongod.receives(timeout=10)
            commands.append({key: value for key, value in request.doc.items() if key not in ("lsid", "$db")}
                            | {"$db": request.doc["$db"]})
            reply(request) if callable(reply) else request.reply(reply)
        return answer.result(30), commands


def batch(documents, cursor_id=0, first=True):
    name = "firstBatch" if first else "nextBatch"
    return {"cursor": {"id": cursor_id, "ns": "test.cities", name: documents}}


def test_find_reads_the_whole_cursor(mongod, server):
    answer, commands = exchange(mongod, server, [["find", ["cities", {"country": "KR"}], {"sort": [("name", 1)]}]],
                                batch([{"_id": 1, "name": "Busan"}], CURSOR_ID),
                                batch([{"_id": 2, "name": "Seoul"}], 0, first=False))
    assert answer == (200, [[{"_id": 1, "name": "Busan"}, {"_id": 2, "name": "Seoul"}]])
    assert commands[0] == {"find": "cities", "filter": {"country": "KR"}, "sort": {"name": 1}, "$db": "test"}
    assert commands[1]["getMore"] == CURSOR_ID and commands[1]["collection"] == "cities"


def test_find_one_and_count_documents(mongod, server):
    answer, commands = exchange(mongod, server, [["find_one", ["cities", {"name": "Seoul"}], {}]],
                                batch([{"_id": 2, "name": "Seoul"}]))
    assert answer == (200, [{"_id": 2, "name": "Seoul"}])
    assert commands[0]["limit"] == 1 and commands[0]["filter"] == {"name": "Seoul"}
    answer, commands = exchange(mongod, server, [["count_documents", ["cities", {"country": "KR"}], {}]],
                                batch([{"_id": 1, "n": 7}]))
    assert answer == (200, [7])
    assert commands[0]["aggregate"] == "cities" and commands[0]["pipeline"][0] == {"$match": {"country": "KR"}}


def test_aggregate(mongod, server):
    pipeline = [{"$group": {"_id": "$country", "n": {"$sum": 1}}}]
    answer, commands = exchange(mongod, server, [["aggregate", ["cities", pipeline], {}]],
                                batch([{"_id": "KR", "n": 2}, {"_id": "US", "n": 1}]))
    assert answer == (200, [[{"_id": "KR", "n": 2}, {"_id": "US", "n": 1}]])
    assert commands[0]["aggregate"] == "cities" and commands[0]["pipeline"] == pipeline


def test_insert_update_and_delete(mongod, server):
    answer, commands = exchange(mongod, server, [["insert_one", ["cities", {"name": "Daegu"}], {}]], {"n": 1})
    inserted = commands[0]["documents"][0]
    assert commands[0]["insert"] == "cities" and inserted["name"] == "Daegu"
    assert answer == (200, [{"inserted_id": str(inserted["_id"])}]) and isinstance(inserted["_id"], ObjectId)
    answer, commands = exchange(mongod, server, [["insert_many", ["cities", [{"_id": 5}, {"_id": 6}]], {}]], {"n": 2})
    assert answer == (200, [{"inserted_ids": [5, 6]}]) and commands[0]["documents"] == [{"_id": 5}, {"_id": 6}]
    answer, commands = exchange(mongod, server, [["update_many", ["cities", {"country": "KR"},
                                                                   {"$set": {"visited": True}}], {}]],
                                {"n": 3, "nModified": 2})
    assert answer == (200, [{"matched_count": 3, "modified_count": 2, "upserted_id": None}])
    assert commands[0]["updates"] == [{"q": {"country": "KR"}, "u": {"$set": {"visited": True}}, "multi": True,
                                      "upsert": False}]
    answer, commands = exchange(mongod, server, [["delete_one", ["cities", {"_id": 5}], {}]], {"n": 1})
    assert answer == (200, [{"deleted_count": 1}])
    assert commands[0]["deletes"] == [{"q": {"_id": 5}, "limit": 1}]


def test_a_duplicate_key_is_409_and_other_errors_fail_with_the_message(mongod, server):
    duplicate = {"n": 0, "writeErrors": [{"index": 0, "code": 11000, "errmsg": "E11000 duplicate key error"}]}
    (status, body), _ = exchange(mongod, server, [["insert_one", ["cities", {"_id": 1}], {}]], duplicate)
    assert status == 409 and "E11000 duplicate key error" in body["error"]
    answer, _ = exchange(mongod, server, [["find", ["cities", {"$bad": 1}], {}]],
                         lambda request: request.command_err(2, "unknown top level operator: $bad"), how="dispatch")
    [result] = answer[1]
    assert (result["status"], result["status_code"]) == (1, 500)
    assert "unknown top level operator: $bad" in result["reason"]


def test_a_call_whose_corequest_times_out_gives_its_connection_up(mongod, server):
    (status, _), commands = exchange(mongod, server, [["find_one", ["cities", {"slow": True}], {}]],
                                     lambda request: None, timeout=1)  # never answered
    assert status == 504 and commands[0]["filter"] == {"slow": True}
    answer, _ = exchange(mongod, server, [["find_one", ["cities", {}], {}]], batch([{"_id": 3}]))
    assert answer == (200, [{"_id": 3}])


def test_calls_that_are_not_mongodb_methods_are_refused(server):
    assert call(server, "/mongo", {"alias": "@mongo", "calls": [["drop", ["cities"], {}]]}) == (
        500, {"error": "AttributeError: 'drop' is not a MongoDB command was.db serves"})
    status, body = call(server, "/mongo", {"alias": "@mongo", "calls": [["find", [{"name": "x"}], {}]]})
    assert status == 500 and "the collection's name comes first" in body["error"]
    status, body = call(server, "/sql", {"alias": "@mongo", "sql": "SELECT 1"})
    assert status == 500 and "is a MongoDB alias" in body["error"]


def test_a_server_that_cannot_be_reached_is_a_network_error(server):
    [result] = call(server, "/mongo", {"alias": "@down", "calls": [["find_one", ["cities"], {}]], "how": "dispatch"},
                    timeout=40)[1]
    assert (result["status"], result["status_code"]) == (3, 502) and "127.0.0.1" in result["reason"]


REAL_MONGODB = os.environ.get("SKITAI_TEST_MONGODB_URL", "")


@pytest.mark.skipif(not REAL_MONGODB, reason="no real mongod: set SKITAI_TEST_MONGODB_URL=host:port to run it "
                    "(none is installable here or in CI; the mockupdb tests above cover the driver)")
def test_against_a_real_mongod():
    database = f"skitai_dbi_{uuid.uuid4().hex[:12]}"
    direct = pymongo.MongoClient(f"mongodb://{REAL_MONGODB}", serverSelectionTimeoutMS=5000)
    try:
        with db_server([["@mongo", "mongodb", f"{REAL_MONGODB}/{database}"]]) as server:
            def calls(*calls):
                return call(server, "/mongo", {"alias": "@mongo", "calls": [list(c) for c in calls]})

            assert calls(["insert_many", ["cities", [{"_id": 1, "name": "Seoul", "country": "KR"},
                                                     {"_id": 2, "name": "Busan", "country": "KR"},
                                                     {"_id": 3, "name": "Austin", "country": "US"}]], {}]) == (
                200, [{"inserted_ids": [1, 2, 3]}])
            assert calls(["find", ["cities", {"country": "KR"}], {"sort": [("name", 1)], "projection": {"_id": 0}}],
                         ["count_documents", ["cities", {}], {}]) == (
                200, [[{"name": "Busan", "country": "KR"}, {"name": "Seoul", "country": "KR"}], 3])
            assert calls(["update_one", ["cities", {"_id": 3}, {"$set": {"name": "Dallas"}}], {}],
                         ) == (200, [{"matched_count": 1, "modified_count": 1, "upserted_id": None}])
            assert calls(["aggregate", ["cities", [{"$group": {"_id": "$country", "n": {"$sum": 1}}},
                                                   {"$sort": {"_id": 1}}]], {}]) == (
                200, [[{"_id": "KR", "n": 2}, {"_id": "US", "n": 1}]])
            assert calls(["insert_one", ["cities", {"_id": 1}], {}])[0] == 409
            assert calls(["delete_many", ["cities", {"country": "KR"}], {}]) == (200, [{"deleted_count": 2}])
            assert calls(["find_one", ["cities", {}], {}]) == (200, [{"_id": 3, "name": "Dallas", "country": "US"}])
    finally:
        direct.drop_database(database)
        direct.close()


def test_pymongo_is_loaded_only_when_a_mongodb_alias_is_used():
    """pymongo costs each worker about 24 MiB: a server with the plugin and no MongoDB alias
    must not pay it (a subprocess, since this test session has imported pymongo already)."""
    import subprocess
    import sys

    code = "import sys, skitai_dbi.plugin, skitai_dbi.errors; print('pymongo' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert loaded.stdout.strip() == "False", loaded.stderr
