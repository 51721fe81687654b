"""`was.xmlrpc` and `was.jsonrpc` over real sockets: an app in a Skitai server calls Python's
`xmlrpc.server.SimpleXMLRPCServer` and a JSON-RPC 2.0 WSGI app served by Skitai, by URL and by
alias, with `.lb` fail-over and `.map`; faults become failed Results with their code and message."""
import json
import threading
import xmlrpc.client
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

import httpx
import pytest

import skitai
from skitai import was
from skitai.corequest import STA_NETERR, STA_NORMAL, STA_REQFAIL
from skitai.testing import ServerThread, StartedServers, free_port
from skitai_gateway.rpc import RpcFault


def ask(server, path="/", timeout=30):
    response = httpx.get(server.url(path), timeout=timeout)
    assert response.status_code == 200, response.text
    return response.json()


def outcome(result):
    return {"status": result.status, "code": result.status_code, "data": result.data,
            "expt": type(result.expt).__name__ if result.expt else None}


# the XML-RPC upstream: the standard library's server in a thread
class QuietHandler(SimpleXMLRPCRequestHandler):
    rpc_paths = ("/rpc2",)

    def log_message(self, *args):
        pass


class XmlRpcUpstream:
    def __init__(self, name):
        self.server = SimpleXMLRPCServer(("127.0.0.1", 0), requestHandler=QuietHandler, allow_none=True,
                                         use_builtin_types=True, logRequests=False)
        self.server.register_introspection_functions()
        self.server.register_function(lambda package: {"skitai": "0.29"}[package], "get_version")
        self.server.register_function(lambda *values: [name, *values], "echo")
        self.server.register_function(self.missing, "book")
        self.server.register_function(lambda: 1 / 0, "divide")
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @staticmethod
    def missing(title):
        raise xmlrpc.client.Fault(42, f"no such book: {title}")

    def url(self):
        return f"http://127.0.0.1:{self.port}/rpc2"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def xmlrpc_upstream():
    started = []

    def start(name="a"):
        started.append(XmlRpcUpstream(name))
        return started[-1]

    yield start
    for upstream in started:
        upstream.stop()


# the JSON-RPC upstream: a small WSGI app served by Skitai
def jsonrpc_app(name):
    def app(environ, start_response):
        methods = {
            "add": lambda a, b: a + b,
            "greet": lambda who, greeting="hello": f"{greeting} {who}",
            "member": lambda: name,
            "txn": lambda: [environ.get("HTTP_X_GTXN_ID"), environ.get("HTTP_X_LTXN_ID")],
        }
        if environ["PATH_INFO"] == "/not-rpc":
            body = json.dumps({"just": "json"}).encode()
        else:
            call = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
            params = call.get("params", [])
            try:
                function = methods[call["method"]]
            except KeyError:
                answer = {"error": {"code": -32601, "message": "Method not found", "data": call["method"]}}
            else:
                try:
                    value = function(**params) if isinstance(params, dict) else function(*params)
                    answer = {"result": value}
                except TypeError as error:
                    answer = {"error": {"code": -32602, "message": f"Invalid params: {error}"}}
            body = json.dumps({"jsonrpc": "2.0", "id": call["id"], **answer}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    return app


@pytest.fixture
def jsonrpc_upstream():
    servers = StartedServers(ServerThread)
    yield lambda name="a": servers(jsonrpc_app(name))
    servers.stop()


# XML-RPC
def test_xmlrpc_stub_calls_as_the_manual_shows(serve, xmlrpc_upstream):
    up = xmlrpc_upstream()

    def call():
        with was.xmlrpc(up.url()) as stub:
            req = stub.get_version("skitai")
            version = req.fetch()
            echoed = stub.echo("héllo", 3, 1.5, None, [1, {"k": True}]).fetch()
            return [version, echoed, "system.listMethods" in stub.system.listMethods().fetch()]

    assert ask(serve({"/": call})) == ["0.29", ["a", "héllo", 3, 1.5, None, [1, {"k": True}]], True]


def test_xmlrpc_faults_are_failed_results_with_their_code_and_message(serve, xmlrpc_upstream):
    up = xmlrpc_upstream()

    def call():
        stub = was.xmlrpc(up.url())
        missing = stub.book("Zauberflöte").dispatch()
        try:
            missing.fetch()
        except RpcFault as fault:
            raised = [fault.code, fault.message, fault.faultCode, isinstance(fault, xmlrpc.client.Fault)]
        divided = stub.divide().dispatch()
        return [outcome(missing), raised, outcome(divided)["data"]["code"], divided.data["message"]]

    missing, raised, code, message = ask(serve({"/": call}))
    assert missing == {"status": STA_REQFAIL, "code": 500, "expt": "RpcFault",
                       "data": {"code": 42, "message": "no such book: Zauberflöte"}}
    assert raised == [42, "no such book: Zauberflöte", 42, True]
    assert code == 1 and "ZeroDivisionError" in message   # the server's fault for an exception


def test_xmlrpc_refuses_keyword_arguments_and_unmarshallable_values(serve, xmlrpc_upstream):
    up = xmlrpc_upstream()

    def call():
        stub = was.xmlrpc(up.url())
        return [outcome(stub.echo(word="x").dispatch()), outcome(stub.echo(2 ** 40).dispatch())]

    keyword, big = ask(serve({"/": call}))
    assert keyword == {"status": STA_REQFAIL, "code": 500, "data": None, "expt": "TypeError"}
    assert big == {"status": STA_REQFAIL, "code": 500, "data": None, "expt": "OverflowError"}


def test_an_answer_that_is_no_xmlrpc_is_a_bad_gateway_and_a_404_stays_a_404(serve, jsonrpc_upstream,
                                                                              xmlrpc_upstream):
    json_up, xml_up = jsonrpc_upstream(), xmlrpc_upstream()

    def call():
        wrong = was.xmlrpc(json_up.url("/not-rpc")).anything().dispatch()
        missing = was.xmlrpc(f"http://127.0.0.1:{xml_up.port}/elsewhere").anything().dispatch()
        return [outcome(wrong), outcome(missing)["code"], missing.status]

    wrong, code, status = ask(serve({"/": call}))
    assert (wrong["status"], wrong["code"], wrong["expt"]) == (STA_NETERR, 502, "BadUpstreamResponse")
    assert (status, code) == (STA_NORMAL, 404)


def test_xmlrpc_lb_fails_over_and_map_calls_every_member(serve, xmlrpc_upstream):
    a, b = xmlrpc_upstream("a"), xmlrpc_upstream("b")
    dead = free_port()

    def call():
        with was.xmlrpc.lb("@search/rpc2") as stub:
            balanced = [stub.echo(n).fetch() for n in range(2)]
        with was.xmlrpc.map("@everyone/rpc2") as stub:
            tasks = stub.echo("x")
        return [balanced, [result.data for result in tasks.dispatch(timeout=10)], tasks.meta["members"]]

    gateway = serve({"/": call})
    gateway.kernel.aliases.add("@search", skitai.PROTO_HTTP, [f"127.0.0.1:{dead} 5", f"127.0.0.1:{a.port}"])
    gateway.kernel.aliases.add("@everyone", skitai.PROTO_HTTP, [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"])
    balanced, mapped, members = ask(gateway)
    assert balanced == [["a", 0], ["a", 1]]           # the heavier member refuses: the other answers
    assert mapped == [["a", "x"], ["b", "x"]] and members == [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]


# JSON-RPC 2.0
def test_jsonrpc_positional_and_keyword_calls(serve, jsonrpc_upstream):
    up = jsonrpc_upstream()

    def call():
        with was.jsonrpc(up.url("/rpc")) as stub:
            return [stub.add(2, 3).fetch(), stub.greet(who="Hans", greeting="hi").fetch(), stub.member().fetch()]

    assert ask(serve({"/": call})) == [5, "hi Hans", "a"]


def test_jsonrpc_error_objects_are_failed_results(serve, jsonrpc_upstream):
    up = jsonrpc_upstream()

    def call():
        stub = was.jsonrpc(up.url("/rpc"))
        unknown = stub.nothing().dispatch()
        try:
            unknown.fetch()
        except RpcFault as fault:
            raised = [fault.code, fault.message, fault.data]
        both = stub.add(1, b=2).dispatch()
        return [outcome(unknown), raised, outcome(stub.add(1).dispatch())["data"], outcome(both)["expt"]]

    unknown, raised, invalid, both = ask(serve({"/": call}))
    assert unknown == {"status": STA_REQFAIL, "code": 500, "expt": "RpcFault",
                       "data": {"code": -32601, "message": "Method not found"}}
    assert raised == [-32601, "Method not found", "nothing"]
    assert invalid["code"] == -32602 and invalid["message"].startswith("Invalid params")
    assert both == "TypeError"   # positional and keyword arguments together: refused before sending


def test_an_answer_that_is_no_jsonrpc_is_a_bad_gateway(serve, jsonrpc_upstream):
    up = jsonrpc_upstream()
    result = ask(serve({"/": lambda: outcome(was.jsonrpc(up.url("/not-rpc")).add(1, 2).dispatch())}))
    assert (result["status"], result["code"], result["expt"]) == (STA_NETERR, 502, "BadUpstreamResponse")


def test_jsonrpc_lb_map_and_the_result_cache(serve, jsonrpc_upstream):
    a, b = jsonrpc_upstream("a"), jsonrpc_upstream("b")

    def call():
        members = [was.jsonrpc.lb("@rpc/rpc").member().fetch() for _ in range(3)]
        mapped = was.jsonrpc.map("@rpc/rpc").add(20, 22).fetch()
        cached = [was.jsonrpc("@rpc/rpc").add(1, 1).dispatch(cache=60).cached for _ in range(2)]
        return [sorted(members), mapped, cached]

    gateway = serve({"/": call})
    gateway.kernel.aliases.add("@rpc", skitai.PROTO_HTTP, [f"127.0.0.1:{a.port} 2", f"127.0.0.1:{b.port}"])
    members, mapped, cached = ask(gateway)
    assert members == ["a", "a", "b"] and mapped == [42, 42] and cached == [False, True]


def test_rpc_calls_forward_the_transaction_ids(serve, jsonrpc_upstream):
    up = jsonrpc_upstream()
    stub = lambda: was.jsonrpc(up.url("/rpc"))  # noqa: E731
    gateway = serve({"/": lambda: [stub().txn().fetch(), stub().txn().fetch()]})
    response = httpx.get(gateway.url("/"), headers={"X-Gtxn-Id": "GTID-T2", "X-Ltxn-Id": "3004"}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == [["GTID-T2", "4005"], ["GTID-T2", "4006"]]
