"""Building the WSGI environ of a request from a per-mount base dict.

The constant keys are computed once per mount and copied per request; header names map to their
`HTTP_*` keys through a cache, and Host headers to SERVER_NAME and SERVER_PORT through another, so
the per-request work is a dict copy plus one lookup per header.
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


def build_environ(base: dict, exchange: Exchange) -> dict:
    environ = base.copy()
    environ["REQUEST_METHOD"] = exchange.method
    environ["PATH_INFO"] = exchange.path_info
    environ["QUERY_STRING"] = exchange.query
    environ["REQUEST_URI"] = exchange.target
    environ["SERVER_PROTOCOL"] = exchange.protocol_name
    environ["wsgi.url_scheme"] = exchange.scheme
    environ["wsgi.input"] = exchange.body
    client = exchange.client
    environ["REMOTE_ADDR"] = client[0] if client else ""
    environ["REMOTE_PORT"] = str(client[1]) if client else ""
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
    server = exchange.server
    if host:
        names = _SERVER_NAMES.get((host, exchange.scheme))
        if names is None:
            name, port = split_host(host)
            names = (name or host, port or ("443" if exchange.scheme == "https" else "80"))
            if len(host) <= 262:  # a client's long Host is not held (253 + ":" + port at most)
                if len(_SERVER_NAMES) >= 1024:
                    _SERVER_NAMES.clear()
                _SERVER_NAMES[(host, exchange.scheme)] = names
        environ["SERVER_NAME"], environ["SERVER_PORT"] = names
    else:
        environ["SERVER_NAME"] = str(server[0]) if server else "localhost"
        environ["SERVER_PORT"] = str(server[1]) if server else "80"
    return environ
