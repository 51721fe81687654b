"""One typed settings object for the whole server.

Every public setter (`skitai.set_keep_alive`, `skitai.set_max_upload_size`, ...) writes here and
every component reads from here, so a default lives in exactly one place and plugins see the
same values through the `skitai_configure` hook before any socket is bound.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class ForwardProxySettings:
    """The arguments of `skitai.enable_proxy`, as given; the plugin that serves the proxy
    compiles and checks them when the server is configured."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    ports: tuple[Any, ...] = (80, 443)
    public: bool = True
    users: Any = None          # {user: password} for Proxy-Authorization: Basic, or None
    realm: str = "Skitai proxy"


@dataclass(frozen=True)
class ApiGatewaySettings:
    """The arguments of `skitai.enable_gateway`, as given; the plugin that serves mounted
    aliases (skitai-gateway) loads the keys and checks them when the server is configured."""

    enable_auth: bool = True
    secret: str | bytes | None = None
    realm: str = "API Gateway"
    algorithms: tuple[str, ...] = ("HS256",)
    public_key: str | None = None   # a PEM file: RS256, ES256 ... tokens
    jwks: str | None = None         # a JWKS file (keys picked by the token's `kid`)
    audience: tuple[str, ...] = ()
    issuer: str | None = None
    leeway: float = 0.0
    roles_claim: str = "roles"


@dataclass
class ServerConfig:
    address: str = "127.0.0.1"
    port: int = 5000
    threads: int = 4
    name: str | None = None
    # --devel: debug and reloading on, no max-age; --silent: debug and reloading forced off
    devel: bool = False
    silent: bool = False
    # the command word of the command line (start, stop, restart, status, install, ...)
    command: str | None = None
    # --fallback-user: whom to run as after binding when started as root outside sudo
    fallback_user: str | None = None
    # skitai.enable_ssl(certfile, keyfile, passphrase): the main listener speaks TLS
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_passphrase: str | None = None
    ssl_handshake_timeout: float = 10.0
    # skitai.enable_forward(forward_port, to_port, domain): a plain-HTTP listener that redirects
    # to https, and www.<domain> redirected to <domain>
    forward_port: int | None = None
    forward_to_port: int = 443
    forward_domain: str | None = None
    # skitai.run(quic=N): HTTP/3 on UDP port N beside the TCP port (a plugin serves it:
    # skitai-http3, with skitai.enable_ssl); skitai.set_http3_advertised_port: the port the TCP
    # answers' Alt-Svc names (None: N), where UDP 443 is forwarded to N
    quic_port: int | None = None
    quic_advertised_port: int | None = None
    # skitai.enable_http3_retry(): validate a client's address with a Retry before any state
    quic_retry: bool = False
    # skitai.enable_http3_early_data(): session tickets with 0-RTT, safe methods only
    quic_early_data: bool = False
    # ---profile, ---gc, ---memtrack
    profile: bool = False
    manual_gc: bool = False
    memtrack: bool = False

    keep_alive: float = 30.0
    # skitai.set_request_timeout: the longest gap in receiving a request (408), the longest wait
    # for a WSGI thread (503), the longest an app waits for a client to read (ClientDisconnected)
    request_timeout: float = 30.0
    shutdown_timeout: float = 10.0
    # skitai.set_max_queued_requests: WSGI requests waiting for a free thread, per worker
    # process; more are answered 503 with Retry-After
    max_queued_requests: int = 1024

    max_upload_size: int = 256 * MiB
    max_request_line: int = 8190
    max_header_size: int = 64 * KiB
    max_header_count: int = 100
    # skitai.set_websocket_max_message_size: a bigger message closes its WebSocket with 1009
    websocket_max_message_size: int = 1 * MiB

    # (url prefix, seconds) for static files; the longest matching prefix wins.
    max_ages: list[tuple[str, int]] = field(default_factory=list)
    # skitai.set_static_cache: per-worker cache of static answers (skitai/static/cache.py):
    # seconds before an entry is checked against the disk again (--devel: every request),
    # entries kept, bytes of small files' content held, largest file held in memory
    static_cache_valid: float = 1.0
    static_cache_entries: int = 1000
    static_cache_memory: int = 4 * MiB
    static_cache_file_size: int = 64 * KiB
    log_off: list[str] = field(default_factory=list)
    access_log: bool = True
    # skitai.enable_file_logging(path): request.log, app.log, server.log in `paths.log_dir(log_path)`
    file_logging: bool = False
    log_path: str | None = None

    # worker CPU watch (skitai.set_worker_critical_point); interval 0 turns it off
    critical_cpu_percent: float = 90.0
    critical_continuous: int = 3
    critical_interval: float = 0.0

    # skitai.run(workers=N): how many worker processes serve (1: the master serves alone)
    workers: int = 1
    # corequests: result cache size (skitai.set_max_rcache), names of the worker-shared
    # last-update keys and integer states (skitai.register_cache_keys, skitai.register_states)
    max_rcache: int = 300
    cache_keys: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    # upstream connections of corequests (plugins such as skitai-gateway read these):
    # skitai.set_backend_keep_alive: an idle pooled connection to a backend is closed after
    # this many seconds; skitai.set_backend_ca: a PEM bundle of CAs trusted for HTTPS backends
    # in addition to the system's
    backend_keep_alive: float = 10.0
    backend_ca: str | None = None
    # skitai.enable_cachefs: the HTTP cache of upstream answers (a plugin such as skitai-gateway
    # keeps it): bytes in memory per worker, bytes on disk shared by the workers, and where
    cachefs_memmax: int = 0
    cachefs_diskmax: int = 0
    cachefs_path: str | None = None
    # the reverse proxy (a plugin such as skitai-gateway serves `skitai.mount("/x", "@alias")`):
    # skitai.set_proxy_keep_alive(channel, tunnel): the longest a proxied request waits for the
    # member (its answer's head, or the next piece of its body: 504 or a cut response after),
    # and the longest a tunnel (a WebSocket relayed to a member) stays open with no bytes either
    # way; skitai.set_proxy_trusted(...): the networks of proxies in front of this one, whose
    # Forwarded and X-Forwarded-* fields are kept (from anyone else they are replaced)
    proxy_keep_alive: float = 60.0
    proxy_tunnel_keep_alive: float = 600.0
    proxy_trusted: list[str] = field(default_factory=list)
    # skitai.enable_proxy(...): a forward proxy (served by a plugin: skitai-gateway), None when
    # off; its CONNECT tunnels close after proxy_tunnel_keep_alive seconds without a byte
    forward_proxy: ForwardProxySettings | None = None
    # skitai.enable_gateway(...): mounted aliases served as an API gateway (a plugin:
    # skitai-gateway), None when off; skitai.set_auth_handler(handler)
    api_gateway: ApiGatewaySettings | None = None
    auth_handler: Any = None

    # skitai.set_smtp: the default SMTP server of `was.email` (the skitai-smtpda plugin sends
    # through it): "host:port", login, implicit TLS (ssl) or STARTTLS, a PEM bundle of CAs
    # trusted in addition to the system's
    smtp_server: str | None = None
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_ssl: bool = False
    smtp_starttls: bool = False
    smtp_ca: str | None = None

    # parsed command line (argparse.Namespace) once `skitai.run()` has read it
    options: Any = None

    def max_age_for(self, path: str) -> int | None:
        """The configured max-age for a URL path, or None when caching headers must not be sent."""
        if self.devel:
            return None
        best: tuple[int, int] | None = None
        for prefix, seconds in self.max_ages:
            base = prefix.rstrip("/")
            if path == base or path.startswith(base + "/"):
                if best is None or len(base) >= best[0]:  # a later setting overrides
                    best = (len(base), seconds)
        return None if best is None else best[1]

    def is_logged(self, path: str) -> bool:
        """False when `skitai.log_off` patterns silence this path ('/prefix/' or '*.ext')."""
        if not self.access_log:
            return False
        for pattern in self.log_off:
            if "*" in pattern or "?" in pattern:
                if fnmatch.fnmatchcase(path, pattern):
                    return False
            elif path.startswith(pattern):
                return False
        return True
