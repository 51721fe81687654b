"""`was.xmlrpc` and `was.jsonrpc`: RPC stubs whose calls go through the gateway's HTTP path.

    with was.xmlrpc("@search/rpc2") as stub:        # or an absolute http(s):// URL
        version = stub.get_version("skitai").fetch()
    results = was.jsonrpc.map("@search/rpc").search("Mozart").dispatch(timeout=3)

A stub's method call is one POST, made like `was.post` (same pool, member choice, `.lb`
fail-over, `.map`, fault mapping and result cache), whose body the protocol marshals and whose
answer it unmarshals: XML-RPC with the standard library's `xmlrpc.client` (marshalling only),
JSON-RPC 2.0 as JSON. A fault the server answers (an XML-RPC `<fault>`, a JSON-RPC `error`
object) makes a failed Result (STA_REQFAIL, 500) whose `expt` is an `RpcFault` with the fault's
code and message, and whose `data` is `{"code": ..., "message": ...}`; `fetch()` raises it.
"""
from __future__ import annotations

import json
import xmlrpc.client
from typing import TYPE_CHECKING, Any
from xml.parsers.expat import ExpatError

from skitai.corequest import STA_NORMAL, STA_REQFAIL, Result, Task, Tasks
from skitai.corequest.task import DEFAULT_TIMEOUT

from .calls import HttpMethod
from .codec import BadUpstreamResponse, request_headers
from .upstreams import MAX_RESPONSE_SIZE, Upstreams

if TYPE_CHECKING:
    from skitai.corequest.was import Was


class RpcFault(xmlrpc.client.Fault):
    """A fault the RPC server answered: `code`, `message` and, for JSON-RPC, its `data`.
    An `xmlrpc.client.Fault` too (`faultCode`, `faultString`)."""

    def __init__(self, code: Any, message: str, data: Any = None) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.data = data

    def __str__(self) -> str:
        return f"RPC fault {self.code}: {self.message}"


class RpcMethod(HttpMethod):
    """The base of the RPC drivers: `was.<protocol>(url, headers=None, auth=None, timeout=10,
    max_size=64 MiB)` (and `.lb`, `.map`) answers a `Stub` whose method calls are POSTs to `url`."""

    name = ""
    content_type = ""

    def __init__(self, was: "Was", upstreams: Upstreams) -> None:
        super().__init__(was, "POST", upstreams)

    def __repr__(self) -> str:
        return f"<was.{self.name}>"

    def __call__(self, url: str, headers: Any = None, auth: Any = None, timeout: float = DEFAULT_TIMEOUT,
                 max_size: int = MAX_RESPONSE_SIZE) -> "Stub":
        """A stub whose calls go to `url`; to an alias, a member picked by weight."""
        return Stub(self, "one", url, headers, auth, timeout, max_size)

    def lb(self, url: str, headers: Any = None, auth: Any = None, timeout: float = DEFAULT_TIMEOUT,
           max_size: int = MAX_RESPONSE_SIZE) -> "Stub":
        """A stub whose calls fail over to the next member, as `was.get.lb`."""
        return Stub(self, "lb", url, headers, auth, timeout, max_size)

    def map(self, url: str, headers: Any = None, auth: Any = None, timeout: float = DEFAULT_TIMEOUT,
            max_size: int = MAX_RESPONSE_SIZE) -> "Stub":
        """A stub whose calls go to every member and answer a `Tasks`, as `was.get.map`."""
        return Stub(self, "map", url, headers, auth, timeout, max_size)

    def invoke(self, stub: "Stub", method: str, args: tuple, kwargs: dict) -> Task | Tasks:
        """One remote call through the stub's way of calling."""
        fields = request_headers(stub.headers)
        fields["Content-Type"] = fields["Accept"] = self.content_type
        try:
            body = self.marshal(method, args, kwargs)
        except (TypeError, ValueError, OverflowError) as error:  # arguments the protocol cannot carry
            return Task(None, result=Result.failure(STA_REQFAIL, error), timeout=stub.timeout)
        options = dict(data=body, headers=fields, auth=stub.auth, timeout=stub.timeout, max_size=stub.max_size)
        how = {"one": HttpMethod.__call__, "lb": HttpMethod.lb, "map": HttpMethod.map}[stub.mode]
        return how(self, stub.url, **options)

    def _start_task(self, factory, key, use_cache, rm_cache, timeout, filter, meta=None):
        async def answered() -> Result:
            return self.answer(await factory())
        return super()._start_task(answered, key, use_cache, rm_cache, timeout, filter, meta)

    def answer(self, result: Result) -> Result:
        """The HTTP answer made into the RPC's: its value, or a fault. An HTTP answer other than
        2xx that carries no RPC answer stays as it is (`fetch()` raises its code)."""
        if result.status != STA_NORMAL:
            return result
        try:
            value = self.unmarshal(result)
        except RpcFault as fault:
            return Result(STA_REQFAIL, 500, "RPC Fault", {"code": fault.code, "message": fault.message},
                          result.headers, fault)
        except BadUpstreamResponse:
            if not result.ok:
                return result
            raise
        return result.copy(data=value)

    def marshal(self, method: str, args: tuple, kwargs: dict) -> bytes:
        raise NotImplementedError

    def unmarshal(self, result: Result) -> Any:
        """The call's value from a completed HTTP answer; raise `RpcFault` for a fault, and
        `BadUpstreamResponse` for a body that is no answer of the protocol."""
        raise NotImplementedError


class XmlRpc(RpcMethod):
    """`was.xmlrpc`: positional arguments only, as XML-RPC has no others."""

    name = "xmlrpc"
    content_type = "text/xml"

    def marshal(self, method: str, args: tuple, kwargs: dict) -> bytes:
        if kwargs:
            raise TypeError(f"{method}(): XML-RPC takes positional arguments only")
        return xmlrpc.client.dumps(args, method, encoding="utf-8", allow_none=True).encode("utf-8")

    def unmarshal(self, result: Result) -> Any:
        # text the codec decoded by its charset (expat then ignores the XML's own declaration)
        if not isinstance(result.data, (str, bytes)):
            raise BadUpstreamResponse(f"an XML-RPC answer is XML, not {result.get_header('Content-Type')}")
        try:
            params, _ = xmlrpc.client.loads(result.data, use_builtin_types=True)
        except xmlrpc.client.Fault as fault:
            raise RpcFault(fault.faultCode, fault.faultString) from None
        except (ExpatError, xmlrpc.client.ResponseError, ValueError, TypeError, IndexError) as error:
            raise BadUpstreamResponse(f"the backend's XML-RPC answer does not parse: {error}") from error
        if len(params) != 1:
            raise BadUpstreamResponse(f"an XML-RPC answer has one value, this one {len(params)}")
        return params[0]


class JsonRpc(RpcMethod):
    """`was.jsonrpc`: JSON-RPC 2.0, positional (`params` an array) or keyword arguments (an
    object), not both; each call is one HTTP request of its own, with `id` 1."""

    name = "jsonrpc"
    content_type = "application/json"

    def marshal(self, method: str, args: tuple, kwargs: dict) -> bytes:
        if args and kwargs:
            raise TypeError(f"{method}(): JSON-RPC takes positional or keyword arguments, not both")
        call: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": 1}
        if args or kwargs:
            call["params"] = kwargs or list(args)
        return json.dumps(call).encode("utf-8")

    def unmarshal(self, result: Result) -> Any:
        answer = result.data
        if not isinstance(answer, dict) or answer.get("jsonrpc") != "2.0" or answer.get("id") != 1:
            raise BadUpstreamResponse("the backend's answer is no JSON-RPC 2.0 response to the call")
        error = answer.get("error")
        if error is not None:
            if not isinstance(error, dict) or not isinstance(error.get("code"), int):
                raise BadUpstreamResponse(f"a JSON-RPC error object has an integer code: {error!r}")
            raise RpcFault(error["code"], str(error.get("message", "")), error.get("data"))
        if "result" not in answer:
            raise BadUpstreamResponse("a JSON-RPC response has a result or an error")
        return answer["result"]


class Stub:
    """The remote methods of one endpoint: `stub.name(*args)` (dotted names as
    `stub.system.listMethods()`) starts the call and answers its Task (a Tasks for `.map`).
    A context manager for the manual's `with was.xmlrpc(...) as stub:`; nothing to close."""

    def __init__(self, driver: RpcMethod, mode: str, url: str, headers: Any, auth: Any, timeout: float,
                 max_size: int) -> None:
        self.driver = driver
        self.mode = mode
        self.url = url
        self.headers = headers
        self.auth = auth
        self.timeout = timeout
        self.max_size = max_size

    def __enter__(self) -> "Stub":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        return None

    def __repr__(self) -> str:
        return f"<{self.driver.name} stub {self.url}{'' if self.mode == 'one' else ' ' + self.mode}>"

    def __getattr__(self, name: str) -> "RemoteMethod":
        if name.startswith("_"):
            raise AttributeError(name)
        return RemoteMethod(self, name)


class RemoteMethod:
    def __init__(self, stub: Stub, name: str) -> None:
        self.stub = stub
        self.name = name

    def __getattr__(self, name: str) -> "RemoteMethod":
        if name.startswith("_"):
            raise AttributeError(name)
        return RemoteMethod(self.stub, f"{self.name}.{name}")

    def __call__(self, *args: Any, **kwargs: Any) -> Task | Tasks:
        return self.stub.driver.invoke(self.stub, self.name, args, kwargs)

