"""Skitai: a plugin-architected WSGI/HTTP application server.

    import skitai
    skitai.mount("/", app)
    skitai.mount("/", "static")
    skitai.run(address="127.0.0.1", port=5000)
"""
from ._version import __version__
from .api import (
                  add_option,
                  alias,
                  disable_plugin,
                  enable_cachefs,
                  enable_file_logging,
                  enable_forward,
                  enable_gateway,
                  enable_http3_early_data,
                  enable_http3_retry,
                  enable_proxy,
                  enable_ssl,
                  get_kernel,
                  get_option,
                  is_devel,
                  isdev,
                  log_off,
                  mount,
                  options,
                  preference,
                  register_cache_keys,
                  register_states,
                  run,
                  set_auth_handler,
                  set_backend_ca,
                  set_backend_keep_alive,
                  set_http3_advertised_port,
                  set_keep_alive,
                  set_max_age,
                  set_max_queued_requests,
                  set_max_rcache,
                  set_max_upload_size,
                  set_proxy_keep_alive,
                  set_proxy_trusted,
                  set_request_timeout,
                  set_smtp,
                  set_static_cache,
                  set_websocket_max_message_size,
                  set_worker_critical_point,
)
from .backends import (
                  DB_MONGODB,
                  DB_PGSQL,
                  DB_POSTGRESQL,
                  DB_REDIS,
                  DB_SQLITE3,
                  DJANGO,
                  PROTO_HTTP,
                  PROTO_HTTPS,
                  PROTO_WS,
                  PROTO_WSS,
)
from .corequest.result import STA_NETERR, STA_NORMAL, STA_REQFAIL, STA_TIMEOUT, STA_UNSENT
from .errors import HTTPError
from .paths import abspath, getswd
from .services import was
from .websocket.channel import ConnectionClosed
from .websocket.decorator import websocket

__all__ = [
    "__version__",
    "DB_MONGODB",
    "DB_PGSQL",
    "DB_POSTGRESQL",
    "DB_REDIS",
    "DB_SQLITE3",
    "DJANGO",
    "PROTO_HTTP",
    "PROTO_HTTPS",
    "PROTO_WS",
    "PROTO_WSS",
    "HTTPError",
    "STA_NETERR",
    "STA_NORMAL",
    "STA_REQFAIL",
    "STA_TIMEOUT",
    "STA_UNSENT",
    "abspath",
    "add_option",
    "alias",
    "disable_plugin",
    "enable_cachefs",
    "enable_file_logging",
    "enable_forward",
    "enable_gateway",
    "enable_http3_early_data",
    "enable_http3_retry",
    "enable_proxy",
    "enable_ssl",
    "get_kernel",
    "get_option",
    "getswd",
    "is_devel",
    "isdev",
    "log_off",
    "mount",
    "options",
    "preference",
    "register_cache_keys",
    "register_states",
    "run",
    "set_auth_handler",
    "set_backend_ca",
    "set_backend_keep_alive",
    "set_http3_advertised_port",
    "set_proxy_keep_alive",
    "set_proxy_trusted",
    "set_keep_alive",
    "set_max_age",
    "set_max_queued_requests",
    "set_max_rcache",
    "set_max_upload_size",
    "set_request_timeout",
    "set_smtp",
    "set_static_cache",
    "set_websocket_max_message_size",
    "set_worker_critical_point",
    "test_client",
    "was",
    "websocket",
    "ConnectionClosed",
]


def __getattr__(name: str):
    """`skitai.test_client` is imported when a test asks for it: it brings json, http.client and
    the email package, which a served process never uses (about 2 MB of every worker)."""
    if name == "test_client":
        from .testclient import test_client

        return test_client
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
