"""The functions a Skitai script calls (`skitai.mount`, `skitai.run`, `skitai.set_*` ...)."""
from __future__ import annotations

import os
import sys
from typing import Any

from . import logs
from .kernel import Kernel
from .options import CommandLine
from .paths import getswd, process_label
from .preference import Preference
from .preflight import is_preflight
from .startup import StartupError, reported

QUIC_SOCKET = "quic"  # the name HTTP/3's plugin binds its UDP sockets under
_kernel: Kernel | None = None
_disabled_plugins: list[str] = []  # skitai.disable_plugin() before the kernel exists

# `skitai.options`: the app's options, parsed from the command line on first use
options = CommandLine()


def get_kernel() -> Kernel:
    """The process's kernel, created on first use with the plugins the command line
    (`--disable-plugin`) and `skitai.disable_plugin()` left on; a plugin that fails to load
    ends the script with one line naming it."""
    global _kernel
    if _kernel is None:
        with reported():
            kernel = Kernel(disabled=[*options.parse().disable_plugin, *_disabled_plugins])
            kernel.plugins.raise_failures()
        _kernel = kernel
    return _kernel


def disable_plugin(name: str) -> None:
    """Turn a plugin off by name, as `--disable-plugin=NAME` does: a built-in (`forward`,
    `websocket` ...) or an installed one (its entry-point name, see `skitai plugins`). Call it
    before `skitai.mount()`: the plugin's mount adapters go with it."""
    if _kernel is None:
        _disabled_plugins.append(name)
        return
    with reported():
        _kernel.disable_plugin(name)
        _kernel.plugins.raise_failures()


def mount(point: str, obj: Any, app_name: Any = "app", pref: Preference | None = None) -> None:
    """Mount a WSGI app, an app file or module, or a static directory at `point`.

    The spec's form `skitai.mount("/", "wsgi:application", pref)` (preference as third argument)
    is accepted too. What cannot be mounted (a path that is not there, an object no adapter
    takes) ends the script with one line that says so.
    """
    kernel = get_kernel()
    with reported():
        kernel.mount(point, obj, app_name, pref)


def alias(name: str, kind: str, members: str | list[str], role: str = "", source: str = "",
          ssl: bool = False) -> None:
    """Declare a backend alias (the manual's "Adding Backend Server Alias"): `name` such as
    "@members", `kind` one of `skitai.PROTO_HTTP`, `DB_PGSQL` ..., `members` one member or a
    list in the syntax `user:password@host:port/database weight`. An alias whose kind no
    installed plugin serves, or a member that does not parse, ends the script with one line
    naming the cause (and the distribution to install)."""
    kernel = get_kernel()
    with reported():
        kernel.aliases.add(name, kind, members, role=role, source=source, ssl=ssl)


def preference(path: str | None = None) -> Preference:
    return Preference(path)


def set_max_upload_size(size: int) -> None:
    get_kernel().config.max_upload_size = int(size)


def set_websocket_max_message_size(size: int) -> None:
    """The largest WebSocket message a client may send (after decompression); a bigger one
    closes its WebSocket with 1009."""
    get_kernel().config.websocket_max_message_size = int(size)


def set_request_timeout(seconds: float) -> None:
    get_kernel().config.request_timeout = float(seconds)


def set_max_queued_requests(count: int) -> None:
    """How many requests may wait for a free WSGI thread (per worker process); beyond that a
    request is answered 503 with Retry-After at once."""
    if int(count) < 1:
        raise ValueError("skitai.set_max_queued_requests(n) needs n >= 1")
    get_kernel().config.max_queued_requests = int(count)


def set_keep_alive(seconds: float) -> None:
    get_kernel().config.keep_alive = float(seconds)


def set_backend_keep_alive(seconds: float) -> None:
    """Close a pooled connection to a backend (an upstream of `was.get` ...) after it idled this
    many seconds (default 10), before the backend's own keep-alive timeout closes it under a
    request: set it below the backends' keep-alive."""
    if float(seconds) <= 0:
        raise ValueError("skitai.set_backend_keep_alive(seconds) needs seconds > 0")
    get_kernel().config.backend_keep_alive = float(seconds)


def set_backend_ca(path: str) -> None:
    """Trust the CA certificates of the PEM file `path` (relative to the script's directory)
    for HTTPS backends, in addition to the system's: backends with certificates of a private
    CA. Certificates are always verified."""
    from .paths import abspath

    get_kernel().config.backend_ca = abspath(path)


def set_proxy_keep_alive(channel: float = 60, tunnel: float = 600) -> None:
    """The reverse proxy's timeouts (the manual's `skitai.set_proxy_keep_alive`): a proxied
    request whose member sends nothing for `channel` seconds (no answer yet: 504; mid-body: the
    response is cut), and a tunnel (a WebSocket relayed to a member) idle for `tunnel` seconds,
    are given up."""
    if float(channel) <= 0 or float(tunnel) <= 0:
        raise ValueError("skitai.set_proxy_keep_alive(channel, tunnel) needs seconds > 0")
    config = get_kernel().config
    config.proxy_keep_alive, config.proxy_tunnel_keep_alive = float(channel), float(tunnel)


def set_proxy_trusted(*networks: str) -> None:
    """Proxies in front of this server (nginx ...), as addresses or networks ("127.0.0.1",
    "10.0.0.0/8"): the Forwarded and X-Forwarded-For/Proto/Host fields of their requests are
    kept and extended by the reverse proxy. Anyone else's are replaced, so a client cannot
    pass itself off as another address."""
    import ipaddress

    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError as error:
            raise ValueError(f"skitai.set_proxy_trusted: {error}") from None
    get_kernel().config.proxy_trusted = list(networks)


def enable_cachefs(memmax: int = 0, diskmax: int = 0, path: str | None = None) -> None:
    """Cache upstream answers (`was.get` ...) as their HTTP headers allow: up to `memmax` bytes
    in each worker's memory, and up to `diskmax` bytes of files under `path` (relative to the
    script's directory) shared by the workers. Kept by the plugin that makes the calls
    (skitai-gateway); 0 turns a tier off."""
    from .paths import abspath

    if int(memmax) < 0 or int(diskmax) < 0:
        raise ValueError("skitai.enable_cachefs(memmax, diskmax, path) needs sizes >= 0 (bytes)")
    if int(diskmax) > 0 and not path:
        raise ValueError("skitai.enable_cachefs(memmax, diskmax, path): a disk tier (diskmax > 0) needs a path")
    config = get_kernel().config
    config.cachefs_memmax, config.cachefs_diskmax = int(memmax), int(diskmax)
    config.cachefs_path = abspath(path) if path else None


def enable_proxy(allow=(), deny=(), ports=(80, 443), public: bool = True, users=None,
                 realm: str = "Skitai proxy") -> None:
    """Serve as a forward proxy (the manual's "Enabling HTTP/HTTPS Proxy"; skitai-gateway serves
    it): `CONNECT host:port` tunnels and absolute-form `GET http://host/...` requests.

    Destinations: `ports` (numbers, "8000-8999" ranges, or "*") a client may reach; `deny`
    (host names, `*.domain` patterns, addresses, networks) is refused always; `allow` likewise
    admits destinations, private, loopback and link-local ones included, which are refused
    otherwise; `public=False` admits only what `allow` names. `users` ({name: password})
    requires `Proxy-Authorization: Basic` (407 otherwise) in `realm`."""
    if users is not None and (not isinstance(users, dict) or not users):
        raise ValueError("skitai.enable_proxy(users=...) takes a dict {user: password}")
    from .config import ForwardProxySettings

    as_tuple = (lambda value: (value,) if isinstance(value, (str, int)) else tuple(value or ()))
    get_kernel().config.forward_proxy = ForwardProxySettings(
        as_tuple(allow), as_tuple(deny), as_tuple(ports), bool(public), dict(users) if users else None, str(realm))


def enable_gateway(enable_auth: bool = True, secret: str | bytes | None = None, realm: str = "API Gateway",
                   algorithms=None, public_key: str | None = None, jwks: str | None = None,
                   audience=None, issuer: str | None = None, leeway: float = 0,
                   roles_claim: str = "roles") -> None:
    """Serve the mounted aliases (`skitai.mount("/members", "@members")`) as an API gateway (the
    manual's "Run As API Gateway Server"; skitai-gateway serves it): with `enable_auth`, every
    request needs `Authorization: Bearer <JWT>`, verified with `secret` (HS256), or with the
    PEM `public_key` or the `jwks` file (RS256, ES256 ...; paths relative to the script),
    `algorithms` being those accepted; `audience`, `issuer` are required when given, `leeway`
    seconds of clock skew allowed on `exp`/`nbf`; an alias's `role` must be among the token's
    `roles_claim`."""
    from .config import ApiGatewaySettings
    from .paths import abspath

    if enable_auth and not (secret or public_key or jwks):
        raise ValueError("skitai.enable_gateway(True, secret): a secret, a public_key or a jwks file is needed")
    if algorithms is None:
        algorithms = ("HS256",) if secret and not (public_key or jwks) else ("RS256", "ES256")
    audience = (audience,) if isinstance(audience, str) else tuple(audience or ())
    get_kernel().config.api_gateway = ApiGatewaySettings(
        bool(enable_auth), secret, str(realm), tuple(algorithms),
        abspath(public_key) if public_key else None, abspath(jwks) if jwks else None,
        audience, issuer, float(leeway), str(roles_claim))


def set_auth_handler(handler) -> None:
    """The API gateway's say for the app: `handler(claim, request)` is called with a verified
    token's claim (a dict) and the request (`method`, `path`, `headers`, `client`) on the event
    loop (it must not block), and returns the claim to go on with (changed or not), or None to
    refuse the request (401)."""
    if not callable(handler):
        raise TypeError("skitai.set_auth_handler(handler) takes a callable handler(claim, request)")
    get_kernel().config.auth_handler = handler


def set_smtp(server: str, user: str | None = None, password: str | None = None, ssl: bool = False,
             starttls: bool = False, ca: str | None = None) -> None:
    """The SMTP server `was.email` sends through when the message names none (kept by the
    plugin that sends, skitai-smtpda): `server` is "host:port" (port 25 when left out),
    `user` and `password` log in, `ssl=True` speaks TLS from the first byte (port 465),
    `starttls=True` upgrades a plain connection (port 587), `ca` a PEM file of private CAs
    (relative to the script's directory) trusted in addition to the system's. Certificates are
    always verified. The plugin checks the values when the server starts."""
    from .paths import abspath

    config = get_kernel().config
    config.smtp_server, config.smtp_user, config.smtp_password = str(server), user, password
    config.smtp_ssl, config.smtp_starttls = bool(ssl), bool(starttls)
    config.smtp_ca = abspath(ca) if ca else None


def set_max_age(path: str, seconds: int) -> None:
    get_kernel().config.max_ages.append((path, int(seconds)))


def set_static_cache(valid: float | None = None, entries: int | None = None, memory: int | None = None,
                     file_size: int | None = None) -> None:
    """The per-worker cache of static files: an entry is trusted `valid` seconds before the
    disk is asked again (0: every request), at most `entries` paths and `memory` bytes of file
    content are kept, and files up to `file_size` bytes are held in memory (larger ones are
    sent with sendfile). Arguments left out keep their values."""
    config = get_kernel().config
    if valid is not None:
        config.static_cache_valid = max(0.0, float(valid))
    if entries is not None:
        config.static_cache_entries = max(1, int(entries))
    if memory is not None:
        config.static_cache_memory = max(0, int(memory))
    if file_size is not None:
        config.static_cache_file_size = max(0, int(file_size))


def set_worker_critical_point(cpu_percent: float = 90.0, continuous: int = 3, interval: float = 20) -> None:
    """Replace a worker whose CPU use stays above `cpu_percent` for `continuous` checks made
    every `interval` seconds (0 turns the watch off)."""
    config = get_kernel().config
    config.critical_cpu_percent = float(cpu_percent)
    config.critical_continuous = int(continuous)
    config.critical_interval = float(interval)


def enable_ssl(certfile: str, keyfile: str, passphrase: str | None = None) -> None:
    """Serve HTTPS: the certificate (chain) and its key, as PEM files (relative paths are from
    the script's directory). They are read when `skitai.run()` starts, before root privileges
    are dropped; an unusable one stops the start with a message that says why."""
    config = get_kernel().config
    config.ssl_certfile, config.ssl_keyfile, config.ssl_passphrase = certfile, keyfile, passphrase


def enable_forward(forward_port: int = 80, to_port: int = 443, domain: str | None = None) -> None:
    """Also listen for plain HTTP on `forward_port` and redirect every request there to
    `https://<domain or requested host>[:to_port]`; with `domain`, requests over https for
    `www.<domain>` are redirected to `<domain>`."""
    config = get_kernel().config
    config.forward_port, config.forward_to_port, config.forward_domain = int(forward_port), int(to_port), domain


def set_http3_advertised_port(port: int) -> None:
    """The UDP port HTTP/3 is advertised on (`Alt-Svc: h3=":port"` in the TCP answers) when it
    is not the `quic` port of `skitai.run()`: UDP 443 forwarded to 4433, as the manual does."""
    get_kernel().config.quic_advertised_port = int(port)


def enable_http3_retry() -> None:
    """Answer every new HTTP/3 connection with a Retry first (RFC 9000 8.1): the client must
    show it receives at its address before the server keeps any state for it, at the cost of
    one more round trip (a defence against spoofed-address floods)."""
    get_kernel().config.quic_retry = True


def enable_http3_early_data() -> None:
    """Let HTTP/3 clients resume with a session ticket and send requests in 0-RTT (early data,
    one round trip saved). Early data can be replayed by an attacker, so only safe methods
    (GET, HEAD, OPTIONS, TRACE) received in it are served; any other is answered
    425 Too Early (RFC 8470) and the client repeats it after the handshake."""
    get_kernel().config.quic_early_data = True


def set_max_rcache(entries: int) -> None:
    """How many corequest results each worker's result cache keeps (least recently used go)."""
    get_kernel().config.max_rcache = int(entries)


def register_cache_keys(*keys: str) -> None:
    """Name the models whose changes the workers share (`was.setlu`/`was.getlu`); before run()."""
    _register_shared("cache key", *keys)


def register_states(*names: str) -> None:
    """Name integer states the workers share (`was.setgs`/`was.getgs`); before run()."""
    _register_shared("state", *names)


def _register_shared(kind: str, *names: str) -> None:
    kernel = get_kernel()
    if kernel.shared is not None:
        raise RuntimeError(f"skitai: register {kind}s before skitai.run(); the shared table is allocated "
                           "when the server starts and cannot grow afterwards")
    from .corequest.shared import CACHE_KEY, register

    config = kernel.config
    mine, others = (config.cache_keys, config.states) if kind == CACHE_KEY else (config.states, config.cache_keys)
    register(kind, mine, others, names)


def log_off(*patterns: str) -> None:
    get_kernel().config.log_off.extend(patterns)


def enable_file_logging(path: str | None = None) -> None:
    """Write request.log, app.log and server.log into `path` (by default
    /var/log/skitai/<user>/<script hash>/) instead of showing logs on the console. SIGUSR1 to
    the master reopens them after logrotate moved them."""
    config = get_kernel().config
    config.file_logging = True
    config.log_path = path


def add_option(short: str | None, long: str | None = None, desc: str = "") -> None:
    """Declare an app option: `add_option('-D', '--dist', 'distribute mode')`, or one that takes
    a value: `add_option(None, '--db=DB_NAME', 'use that database')`. It shows in `--help`."""
    options.add_option(short, long, desc)


def get_option(*names: str):
    """The value of the first of `names` given on the command line (True for a flag), else None."""
    return options.get_option(*names)


def is_devel() -> bool:
    """True when the script runs with `--devel`."""
    return bool(options.parse().devel)


isdev = is_devel


def _apply_command_line(kernel: Kernel) -> None:
    """Read the command line into the settings; `--help` prints every option and exits."""
    config = kernel.config
    options.set_plugin_options(lambda parser: kernel.pm.hook.skitai_add_options(parser=parser))
    parsed = options.parse()
    if parsed.help:
        print(options.help_text())
        sys.exit(0)
    options.check_unknown()
    config.options = parsed
    config.command = options.command
    if parsed.port:
        config.port = parsed.port
    config.devel = parsed.devel
    config.silent = parsed.silent and not parsed.devel
    config.fallback_user = parsed.fallback_user
    config.profile, config.manual_gc, config.memtrack = parsed.profile, parsed.gc, parsed.memtrack
    _apply_mode(kernel)


def _apply_mode(kernel: Kernel) -> None:
    """`--devel` turns `debug` and `use_reloader` on for every mounted app, `--silent` off."""
    config = kernel.config
    if not (config.devel or config.silent):
        return
    for handler in kernel.mounts.handlers():
        app = getattr(handler, "app", None)
        if app is None:
            continue
        for name in ("debug", "use_reloader"):
            try:
                setattr(app, name, config.devel)
            except (AttributeError, TypeError):
                pass  # an app that takes no attributes; config.devel still shows tracebacks


def run(address: str | None = None, port: int | None = None, threads: int | None = None,
        name: str | None = None, workers: int = 1, quic: int | None = None) -> None:
    """Serve the mounted apps until SIGINT or SIGTERM, then stop gracefully.

    `quic`: also serve HTTP/3 on this UDP port (needs `skitai.enable_ssl` and the
    skitai-http3 plugin, `pip install "skitai[http3]"`).

    This process becomes the master: it binds, forks `workers` processes that share the socket,
    replaces any that dies, reloads them on SIGHUP and, with `--devel` or an app's
    `use_reloader`, when the apps' files change. Where there is no fork, it serves itself.

    A mistake that stops the start (a port in use, a plugin that refuses the settings, an
    unknown option) is one line on stderr and exit status 1 (2 for the command line); the
    traceback too with `--devel`.
    """
    kernel = get_kernel()
    with reported():
        _run(kernel, address, port, threads, name, workers, quic)


def _run(kernel: Kernel, address: str | None, port: int | None, threads: int | None,
         name: str | None, workers: int, quic: int | None = None) -> None:
    if workers < 1:
        raise StartupError("skitai.run(workers=N) needs N >= 1")
    if threads is not None and int(threads) < 0:
        raise StartupError("skitai.run(threads=N) needs N >= 0 (0: apps run on the event loop thread)")
    config = kernel.config
    if address is not None:
        config.address = address
    if port is not None:
        config.port = int(port)
    if threads is not None:
        config.threads = int(threads)
    if name is not None:
        config.name = name
    config.workers = workers
    if quic is not None:
        config.quic_port = int(quic)
    _apply_command_line(kernel)
    from .commands import prepare

    # status, stop, install ... end here; start and restart detach below. The check run of a
    # reload (preflight) has no command: it inherits `-d` but must not act on it.
    detach = False if is_preflight() else prepare(config)
    kernel.configure()
    if config.quic_port is not None and QUIC_SOCKET not in kernel.sockets:
        raise StartupError(f"skitai.run(quic={config.quic_port}) needs the HTTP/3 plugin: "
                           'pip install "skitai[http3]"')
    if is_preflight():
        sys.exit(0)  # the new code of a reload imports and mounts: that was the check
    os.chdir(getswd())
    from .listeners import bind_listeners
    from .plugin_sockets import PLUGIN_FD_ENV
    from .privileges import PrivilegeError, drop_privileges
    from .server import Server
    from .supervisor import LISTEN_FD_ENV, WorkerSupervisor, set_title
    from .tls import TLSConfigError, context_for

    # What may need root comes before the drop: reading the certificate and key (often
    # root-only) and binding the ports, the plugins' sockets too (or taking them over on a
    # reload). Binding also comes before detaching, so a taken port is reported on the terminal.
    try:
        context = context_for(kernel)
        listeners = bind_listeners(config, context, os.environ.pop(LISTEN_FD_ENV, None))
        kernel.sockets.bind_all(os.environ.pop(PLUGIN_FD_ENV, None))
        if detach:
            from .daemon import detach as become_daemon

            become_daemon(kernel)
        drop_privileges(config.fallback_user)
    except (TLSConfigError, PrivilegeError) as error:
        raise StartupError(str(error)) from error
    logs.setup(config)  # after detaching: the `start` command's own report stays on the terminal
    from .corequest.shared import SharedTable

    kernel.shared = SharedTable(config.cache_keys, config.states)  # before forking: the workers share it
    if hasattr(os, "fork"):
        status = WorkerSupervisor(kernel, listeners, workers).run()
        if status:
            sys.exit(status)
    elif workers == 1:
        set_title(f"{process_label(config.name)}: master")
        Server(kernel).serve(listeners)
    else:
        raise StartupError("skitai.run(workers=N > 1) needs a platform with fork")
