"""The app the skitai-dbi tests run in a real Skitai server (skitai.testing.ServerProcess).

Aliases come from the environment: DBI_ALIASES is a JSON list of [name, kind, members]; DBI_POOL_SIZE
bounds the pools, DBI_WORKERS the worker processes. POST /sql runs one statement the way an app
does (`with was.db(alias) as db: db.execute(sql, params).<how>()`) and answers JSON; the other
routes are the manual's transaction examples."""
import json
import os

import skitai
import skitai_dbi
from skitai import HTTPError, was


def answer(start_response, status, body):
    data = json.dumps(body, default=str).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def cache_options(request):
    options = {name: request[name] for name in ("use_cache", "rm_cache") if name in request}
    if "use_cache_keys" in request:
        options["use_cache"] = was.getlu(*request["use_cache_keys"])
    return options


def described(results):
    """Results (a list of them for a `Tasks`) as JSON."""
    results = results if isinstance(results, list) else [results]
    return [{"status": r.status, "status_code": r.status_code, "reason": r.reason, "data": plain(r.data),
             "cached": r.cached} for r in results]


def sql(request):
    how = request.get("how", "fetch")
    options = cache_options(request)
    timeout = request.get("timeout")
    if how == "returning":  # no one waits: the statement's own timeout is the session's
        options["timeout"] = timeout
    session = {"db": was.db, "lb": was.db.lb, "map": was.db.map}[request.get("session", "db")]
    with session(request["alias"], **options) as db:
        task = db.execute(request["sql"], request.get("params"))
    if how == "returning":
        return task.returning("returned")
    if how == "dispatch":
        return described(task.dispatch(timeout=timeout, cache=request.get("cache")))
    if how == "fetch":
        return task.fetch(timeout=timeout, cache=request.get("cache"))
    if how == "one":
        return task.one(timeout=timeout)
    if how == "commit":
        task.commit(timeout=timeout)
        return "committed"
    if how == "attributes":  # the manual's row.city, row.t_high ...
        return [[getattr(row, column) for column in request["columns"]] for row in task.fetch(timeout=timeout)]
    raise ValueError(how)


def transaction(request):
    """Steps: ["execute", sql, params] | ["fetch"] | ["fetchone"] | ["fetchmany", n] | ["commit"]
    | ["rollback"] | ["putback"] | ["raise"], in a `with` block, then the steps of "then" after
    it; "bare": no `with` block and auto_putback False, never put back (the request's end must)."""
    out = []

    def run(tx):
        for step in request["steps"]:
            if step[0] == "execute":
                tx.execute(step[1], step[2] if len(step) > 2 else None)
            elif step[0] == "raise":
                raise HTTPError(418, "the block failed")
            else:
                result = getattr(tx, step[0])(*step[1:])
                if step[0].startswith("fetch"):
                    out.append(result)
    if request.get("bare"):
        run(was.transaction(request["alias"], False))
        return out
    with was.transaction(request["alias"], request.get("auto_putback", True), request.get("timeout")) as tx:
        run(tx)
    request["steps"] = request.get("then", [])  # after the block: the manual's models.update()
    run(tx)
    return out


WRITE_RESULTS = ("inserted_id", "inserted_ids", "matched_count", "modified_count", "upserted_id", "deleted_count")


def plain(value):
    """Redis answers bytes, pymongo result objects; JSON carries text and plain values."""
    if isinstance(value, bytes):
        return value.decode()
    if hasattr(value, "acknowledged"):  # pymongo's InsertOneResult, UpdateResult ...
        return {name: plain(getattr(value, name)) for name in WRITE_RESULTS if hasattr(value, name)}
    if isinstance(value, (list, tuple, set)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {plain(key): plain(item) for key, item in value.items()}
    return value


def redis(request):
    """The manual's `was.db("@myredis").set("foo", "bar").wait()`: `commands` is a list of
    [name, args...] started in order (all concurrently) and answered with `how`."""
    session = {"db": was.db, "map": was.db.map}[request.get("session", "db")]
    with session(request["alias"], **cache_options(request)) as db:
        tasks = [getattr(db, name)(*args) for name, *args in request["commands"]]
    timeout = request.get("timeout")
    if request.get("how") == "dispatch":
        cache = request.get("cache")
        return [item for task in tasks for item in described(task.dispatch(timeout=timeout, cache=cache))]
    return [plain(task.fetch(timeout=timeout)) for task in tasks]


def mongo(request):
    """`calls` is a list of [method, args, kwargs] started in order (all concurrently), e.g.
    ["find", ["cities", {"city": "Seoul"}], {"limit": 2}]."""
    session = {"db": was.db, "map": was.db.map}[request.get("session", "db")]
    with session(request["alias"], **cache_options(request)) as db:
        tasks = [getattr(db, name)(*args, **kwargs) for name, args, kwargs in request["calls"]]
    if request.get("how") == "dispatch":
        return [item for task in tasks for item in described(task.dispatch(timeout=request.get("timeout")))]
    return [plain(task.fetch(timeout=request.get("timeout"))) for task in tasks]


def build(start, chain):
    """Apply SQLPhile builder steps: [method, args, kwargs], or ["slice", start, stop] for `[a:b]`."""
    for name, *arguments in chain:
        if name == "slice":
            start = start[slice(*arguments)]
        else:
            args, kwargs = (list(arguments) + [[], {}][len(arguments):])[:2]
            start = getattr(start, name)(*args, **kwargs)
    return start


def phile(request):
    """The manual's SQLPhile style: `chain` built on `was.db(alias)` then `.execute().fetch()`;
    with "transaction", each chain of `chains` executed on a transaction, then committed."""
    if "chains" in request:
        with was.transaction(request["alias"]) as tx:
            for chain in request["chains"]:
                build(tx, chain).execute()
            tx.commit()
        return "committed"
    with was.db(request["alias"]) as db:
        return build(db, request["chain"]).execute().fetch()


ROUTES = {"/phile": phile, "/sql": sql, "/transaction": transaction, "/redis": redis, "/mongo": mongo}


def app(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    request = json.loads(environ["wsgi.input"].read(length) or b"{}")
    if environ["PATH_INFO"] == "/pid":
        return answer(start_response, "200 OK", os.getpid())
    try:
        return answer(start_response, "200 OK", ROUTES[environ["PATH_INFO"]](request))
    except HTTPError as error:
        return answer(start_response, error.status, {"error": error.explain, "status": error.code})
    except Exception as error:
        return answer(start_response, "500 Internal Server Error", {"error": f"{type(error).__name__}: {error}"})


if __name__ == "__main__":
    for name, kind, members in json.loads(os.environ.get("DBI_ALIASES", "[]")):
        skitai.alias(name, kind, members)
    if os.environ.get("DBI_POOL_SIZE"):
        skitai_dbi.set_pool_size(int(os.environ["DBI_POOL_SIZE"]))
    skitai.register_cache_keys("tables.cities")
    skitai.mount("/", app)
    skitai.run(workers=int(os.environ.get("DBI_WORKERS", "1")), threads=8)
