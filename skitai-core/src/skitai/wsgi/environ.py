"""Building the WSGI environ of a request from a per-mount base dict.

The constant keys are computed once per mount; the keys every request of a connection shares
(the client's address, the scheme) once per connection and mount (`connection_environ`, kept in
the exchange's `environ_bases` where the protocol offers one), and that dict is copied per
request. Header names map to their `HTTP_*` keys through a cache, and Host headers to
SERVER_NAME and SERVER_PORT through another, so the per-request work is a dict copy plus one
lookup per header.
"""
from __future__ import annotations

from .. import logs
from .._version import __version__
from ..exchange import Exchange, split_host
from ..transactions import ENVIRON_KEY as TRANSACTION_KEY
from .filewrapper import FileWrapper

_HEADER_KEYS: dict[str, str | None] = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}


# Host header (and scheme) -> (SERVER_NAME, SERVER_PORT): a server hears a few hosts
_SERVER_NAMES: dict[tuple[str, str], tuple[str, str]] = {}


# the Host of a request whose SERVER_NAME and SERVER_PORT are not known yet (never a Host)
_UNKNOWN = object()


def _environ_key(name: str) -> str | None:
    key = _HEADER_KEYS.get(name, "")
    if key == "":
        # Names with "_" are dropped: after the "-" -> "_" mapping they could impersonate a
        # header a proxy in front of us vouches for (X-Forwarded-For vs X_Forwarded_For).
        key = None if "_" in name else "HTTP_" + name.upper().replace("-", "_")
        if len(_HEADER_KEYS) < 4096:
            _HEADER_KEYS[name] = key
    return key


def base_environ(script_name: str, multithread: bool, multiprocess: bool = False) -> dict:
    return {
        "wsgi.version": (1, 0),
        "wsgi.errors": logs.errors_stream(),
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
        "wsgi.input_terminated": True,
        "SERVER_SOFTWARE": f"skitai/{__version__}",
        "SCRIPT_NAME": script_name,
    }


def connection_environ(base: dict, exchange: Exchange, bases: dict) -> tuple[dict, str | None]:
    """`base` (a mount's) with the keys that stay the same for every request of `exchange`'s
    connection, and the Host its SERVER_NAME and SERVER_PORT are for (a connection's requests
    name the same one), kept in `bases` (the exchange's `environ_bases`) for the connection's
    later requests, so a keep-alive request neither formats its client's port nor looks up its
    Host again. The dict is never changed: each request copies it."""
    environ = _with_connection_keys(base.copy(), exchange)
    host = exchange.header("host")
    environ["SERVER_NAME"], environ["SERVER_PORT"] = server_names(host, exchange)
    bases[id(base)] = (base, environ, host)
    return environ, host


def _with_connection_keys(environ: dict, exchange: Exchange) -> dict:
    environ["wsgi.url_scheme"] = exchange.scheme
    client = exchange.client
    environ["REMOTE_ADDR"] = client[0] if client else ""
    environ["REMOTE_PORT"] = str(client[1]) if client else ""
    return environ


def server_names(host: str | None, exchange: Exchange) -> tuple[str, str]:
    """SERVER_NAME and SERVER_PORT for a request with this Host header (None: without one)."""
    if not host:
        server = exchange.server
        return (str(server[0]) if server else "localhost"), (str(server[1]) if server else "80")
    names = _SERVER_NAMES.get((host, exchange.scheme))
    if names is None:
        name, port = split_host(host)
        names = (name or host, port or ("443" if exchange.scheme == "https" else "80"))
        if len(host) <= 262:  # a client's long Host is not held (253 + ":" + port at most)
            if len(_SERVER_NAMES) >= 1024:
                _SERVER_NAMES.clear()
            _SERVER_NAMES[(host, exchange.scheme)] = names
    return names


def build_environ(base: dict, exchange: Exchange) -> dict:
    """The environ of `exchange`'s request. Without `environ_bases` (a protocol that keeps
    none, or the last request of its connection, the only one under `Connection: close`)
    there is nothing to share: the environ is made from `base` at once, without a
    per-connection dict to make and copy."""
    bases = exchange.environ_bases
    if bases is None:
        environ = _with_connection_keys(base.copy(), exchange)
        connection_host = _UNKNOWN
    else:
        entry = bases.get(id(base))
        if entry is not None and entry[0] is base:  # an id is only unique while its dict lives
            connection, connection_host = entry[1], entry[2]
        else:  # the connection's first request to this mount
            connection, connection_host = connection_environ(base, exchange, bases)
        environ = connection.copy()
    environ["REQUEST_METHOD"] = exchange.method
    environ["PATH_INFO"] = exchange.path_info
    environ["QUERY_STRING"] = exchange.query
    environ["REQUEST_URI"] = exchange.target
    environ["SERVER_PROTOCOL"] = exchange.protocol_name
    environ["wsgi.input"] = exchange.body
    environ[TRANSACTION_KEY] = exchange.transaction
    host = None
    for name, value in exchange.headers:
        key = _HEADER_KEYS.get(name, "")
        if key == "":
            key = _environ_key(name)
        if key is None:
            continue
        if key in environ:
            separator = "; " if key == "HTTP_COOKIE" else ", "
            environ[key] = environ[key] + separator + value
        else:
            environ[key] = value
        if name == "host":
            host = value
    if host != connection_host:  # else the connection's SERVER_NAME and SERVER_PORT are this Host's
        # a Host seen before costs the memo's lookup, without the call of server_names
        names = _SERVER_NAMES.get((host, exchange.scheme)) or server_names(host, exchange)
        environ["SERVER_NAME"], environ["SERVER_PORT"] = names
    return environ
