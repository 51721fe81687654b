"""The whole contract between Skitai and its plugins.

A plugin is a module (or object) with functions named like the specs below and decorated with
`skitai.plugin.hookimpl`. Third-party plugins are found through the entry-point group `skitai`::

    [project.entry-points.skitai]
    myplugin = "myplugin.plugin"

Skitai's own features (HTTP/1.1, WSGI apps, static files) are plugins registered through these
very hooks, listed in `skitai.plugins.DEFAULT_PLUGINS`. Every hook takes keyword arguments only,
so a hook can gain an argument later without breaking existing plugins (an implementation may
take fewer arguments than its spec names).

The order: plugins are loaded and `skitai_register_adapters` is called when the kernel is
created (the script's first `skitai.mount()` or `skitai.*` call), since mounting needs the
adapters. `skitai.run()` then calls `skitai_add_options`, `skitai_configure`, and, with the
settings final, `skitai_register_handlers`, `skitai_register_protocols`,
`skitai_register_processes`, `skitai_register_sockets` and `skitai_register_response_fields`: a
plugin registers only what its settings turn on. A hook implementation whose name no spec below
has (a misspelled hook) fails its plugin at loading, unless marked `hookimpl(optionalhook=True)`.
An exception from `skitai_configure` or a registration hook stops the start with one line that
names the plugin and the error (a `ValueError` by its message alone).
"""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("skitai")


@hookspec
def skitai_add_options(parser):
    """Add command-line options to the server's `argparse.ArgumentParser`.

    Called once when `skitai.run()` parses the script's command line, before configuration.
    `parser` is an `argparse.ArgumentParser`; use `parser.add_argument_group(...)` to keep the
    plugin's options together in `--help`. Parsed values reach `skitai_configure` as
    `config.options` (an `argparse.Namespace`).
    """


@hookspec
def skitai_register_commands(commands):
    """Add subcommands to the `skitai` console script (`skitai <name> ...`).

    `commands` is a `skitai.plugin.CommandRegistry`; call
    `commands.add(name, function, help="...")`. The function receives the remaining
    command-line arguments as a list of strings and returns an exit code (or None for 0).
    """


@hookspec
def skitai_configure(config):
    """Read and validate settings before any socket is bound.

    `config` is the `skitai.config.ServerConfig` the script's `skitai.set_*` calls filled in;
    plugins may read and adjust it. Raise `ValueError` with a clear message to refuse a setting:
    the start stops with `skitai: error: plugin NAME failed in skitai_configure: <message>`.
    """


@hookspec
def skitai_register_adapters(adapters):
    """Register mount adapters on `adapters`, a `skitai.plugin.AdapterRegistry`.

    `adapters.add(adapter)`: a `skitai.plugin.MountAdapter` that turns an object passed to
    `skitai.mount()` into a request handler (the core registers adapters for WSGI apps and
    static directories this way). Called when the kernel is created, before the settings are
    final: a script mounts before it calls `skitai.run()`.
    """


@hookspec
def skitai_register_backends(backends):
    """Say which kinds of backend alias the plugin serves, on `backends`, a
    `skitai.backends.BackendRegistry`.

    `backends.add(kind, plugin, paths=False, validate=None)`: `kind` is one of the manual's
    (`skitai.PROTO_HTTP`, `skitai.DB_PGSQL` ...) or one of the plugin's own; `plugin` names the
    plugin in messages; `paths=True` when members are files (resolved against the script's
    folder); `validate(alias)` may raise `ValueError` to refuse an alias as it is declared.
    Called when the kernel is created: a script declares its aliases (`skitai.alias()`) before
    `skitai.run()`, and an alias whose kind nobody serves is refused right there, naming the
    distribution to install.

    At request time a plugin's service finds the aliases in `server.kernel.aliases`
    (`skitai.backends.AliasTable`: `get("@name")` gives an `Alias` with its kind, its parsed
    `members` (host, port, user, password, database, weight, or path), `role`, `sources` and
    `ssl`).
    """


@hookspec
def skitai_register_protocols(protocols, config):
    """Register connection protocols on `protocols`, a `skitai.plugin.ProtocolRegistry`.

    Called after `skitai_configure`, with `config` final: register only what it turns on.

    `protocols.add(name, factory, alpn=(...), default=False, priority=500, preface=b"")`:
    `factory(server)` returns an `asyncio.Protocol` for one accepted connection. The protocol
    marked `default` answers plain TCP connections; a plain connection whose first bytes are a
    protocol's `preface` is handed to that protocol, and one that starts with the preface's
    first word (up to its first space or line end) but then departs from it is closed without
    an answer, being neither that protocol nor HTTP/1.1. On TLS listeners the ALPN ids are offered
    lowest `priority` first (HTTP/1.1 registers at 900); the protocol whose id the handshake
    negotiated gets the connection, already past the handshake, and the default one when none
    was negotiated.

    `protocols.add_upgrade(token, upgrade)`: a `skitai.plugin.ProtocolUpgrade` that takes an
    HTTP/1.1 connection over on `Upgrade: <token>` (h2c, websocket).
    """


@hookspec
def skitai_register_sockets(sockets, config):
    """Register sockets the plugin serves itself (QUIC's UDP ports), on `sockets`, a
    `skitai.plugin.SocketRegistry`.

    Called after `skitai_configure`, with `config` final. `sockets.add(name, bind)`: `bind()`
    returns a bound socket or a list of them (`skitai.listeners.bind_socket(address, port,
    kind=socket.SOCK_DGRAM)` binds a UDP one; `defer_accept=True` on a TCP one whose client
    speaks first, as the core's HTTP listeners do; a port in use is a `StartupError` naming it). The
    master calls it where it binds the core's TCP listeners: before it drops root privileges and
    before it forks, so every worker holds the sockets. A graceful reload hands them, by name, to
    the re-executed master, which does not call `bind` again for a name it inherited: the ports
    stay open through the reload. The plugin's service takes them in each worker from
    `server.sockets(name)` (a list) in `skitai_server_start`; `server.worker_index` (0 to
    `config.workers - 1`, kept by a respawned worker) lets each worker take sockets of its own.
    """


@hookspec
def skitai_register_response_fields(fields, config):
    """Add header fields to every response of some protocols, on `fields`, a
    `skitai.plugin.ResponseFieldRegistry`.

    Called after `skitai_configure`, with `config` final. `fields.add(name, value,
    protocols=("HTTP/1.1", "HTTP/2.0"))` (None: every protocol; HTTP/1.1 covers HTTP/1.0): the
    field is constant for the server's life, so protocols encode it once; a response that
    carries a field of that name itself keeps its own. HTTP/3 advertises itself this way
    (`Alt-Svc: h3=":443"` on the TCP protocols' answers). A protocol plugin adds
    `server.kernel.response_fields.for_protocol(its protocol_name)` to its responses.
    """


@hookspec
def skitai_register_handlers(handlers, config):
    """Register request handlers on `handlers`, a `skitai.plugin.HandlerRegistry`.

    Called after `skitai_configure`, with `config` final: a handler that a setting turns off is
    not registered at all, so it costs requests nothing (the core's forward handler exists only
    after `skitai.enable_forward()`).

    `handlers.add(handler, priority=500)`: a `skitai.plugin.RequestHandler` asked, lowest
    priority first, whether it takes a request; the mount table is registered at priority 1000,
    so a plugin handler at a lower number sees requests before mounted apps do.

    A handler that relays (a proxy) runs on the loop thread with back-pressure both ways, over
    HTTP/1.1 and HTTP/2 alike: `await exchange.body.read_async(size)` (the connection or
    stream stops taking input while the handler does not read), `send_data` then
    `await exchange.drain()` (waits until the client took enough); both raise
    `ClientDisconnected` at once when the client leaves or resets the stream. Once
    `read_async` returned b"", `exchange.body.trailers` holds the request's trailer fields
    (HTTP/1.1 chunked trailer section, HTTP/2 trailing HEADERS; lower-case names, fields RFC
    9110 6.5.1 forbids already refused with 400/a stream error), empty when there were none;
    `exchange.set_trailers` sends response trailers. A plain
    `CONNECT host:port` (HTTP/1.1 authority-form, HTTP/2 RFC 9113 8.5) reaches plugin handlers
    only, its authority in `exchange.target`; `exchange.open_tunnel("200 ...", [], protocol)`
    then carries raw bytes both ways through an `asyncio.Protocol`. See
    `skitai.exchange.Exchange` and `skitai.body.StreamedBody.read_async`.
    """


@hookspec
def skitai_register_processes(processes, config):
    """Ask the master to run and watch processes of the plugin's own beside the workers (a
    delivery agent, a scheduler), on `processes`, a `skitai.processes.ProcessRegistry`.

    Called after `skitai_configure`, with `config` final: register only what it turns on (the
    skitai-smtpda plugin registers its agent when the command line has `--smtpda`).

    `processes.add(name, command, on_stop="stop", on_reload="keep", running_elsewhere=None,
    env=None, output=None)`: the master starts `command` (an argv list, run with the master's
    environment plus `env`) once its workers are started, and starts it again whenever it
    exits while the master runs, waiting 0.5 s, then twice as long each time it exits again
    within 10 s (at most 30 s). `on_stop="stop"` stops it with the workers (SIGTERM, SIGKILL
    after 10 s); `on_stop="detach"` leaves it running when the master stops, in a session of
    its own (a service that outlives the app, stopped by a command of its own).
    `on_reload="keep"`: a SIGHUP reload hands the running process to the new master;
    `"restart"`: it is stopped before the reload and the new master starts it afresh (a
    process that runs the app's code). `running_elsewhere()` returns the pid of an instance the
    master did not start (another app's master or a command started it), or None: the master
    starts its own only while it returns None, checked on every turn of its loop (5 times a
    second), so one instance serves many apps. `output`: a file stdout and stderr are appended
    to (default: the master's). Only a master runs them: a server built in a test does not.
    """


@hookspec
def skitai_register_services(was):
    """Add attributes to `skitai.was`, the object apps use for corequests and services.

    Called once per server process when it starts, on the event loop thread, before any
    request. `was` is that process's `skitai.corequest.was.Was`; call
    `was.add_service(name, service)` to make `service` available as `was.<name>` in every
    request the process serves. A kind of corequest is a `skitai.corequest.Driver` subclass
    instance (`was.add_service("get", HttpDriver(was))`); `was.engine` is the loop, result
    cache and shared state drivers work with. A service with a `close()` method is closed
    when the server stops.

    `was.add_lazy_service(name, factory)` instead makes the service at the first use of
    `was.<name>` by `factory()`, for a service whose libraries are heavy: every installed
    plugin is loaded by every worker, and one whose app never uses the service should not pay
    for them (see `skitai.plugin.import_feature`). The factory runs in the thread of the request
    that uses the service first (an app thread, or the loop with threads=0), one factory at a
    time: what belongs to the loop (a client session) is made at the service's first call on
    the loop, not in the factory. A service that holds something for the request that called it (a
    database transaction's connection) gives it back from a callback registered with
    `skitai.services.at_request_end(callback)`, run when that request ends.

    A service that calls other services forwards the request's API transaction ids: in the
    app's thread, `skitai.transactions.current_transaction()` is the `Transaction` of the
    request being served (None outside one; also `environ["skitai.transaction"]` and
    `exchange.transaction`), and its `call_headers()` the header fields (`X-Gtxn-Id`,
    `X-Ltxn-Id`) of the request's next call, numbered in order. The Skitai that receives them
    logs the same global id and the local id one level deeper.
    """


@hookspec
def skitai_server_start(server):
    """The server is bound and about to serve; `server` is the running `skitai.server.Server`.

    Called on the event loop thread; `server.loop` is the loop, `server.config` the settings.
    An implementation may return an awaitable (a coroutine: opening a datagram endpoint on the
    plugin's sockets, `server.sockets(name)`): the server awaits it before it counts as started.
    An exception here, or from the awaitable, stops the worker before it serves, with one line
    naming the plugin, and the master with exit status 1.

    A plugin that serves connections of its own (over its own sockets) takes part in the
    server's lifecycle like the core's: `server.add_acceptor(acceptor)` has `acceptor.close()`
    called when a graceful stop or reload begins (stop taking new connections, keep the ones in
    flight); `server.connection_opened(conn)` / `connection_closed(conn)` put a connection in
    `server.connections`, whose members get `check_timeout(now)` from the once-a-second sweep,
    `shutdown()` when the graceful stop begins (finish what is in flight, refuse new requests:
    a GOAWAY) and `abort()` when the shutdown timeout has passed; the stop waits until the set
    is empty or that timeout.
    """


@hookspec
def skitai_server_stop(server):
    """The server stopped accepting and finished (or gave up on) in-flight requests.

    Called on the event loop thread, which still runs. An implementation may return an
    awaitable (a coroutine: closing a client pool, say): the server awaits it on the loop before
    the loop closes, within `config.shutdown_timeout` seconds (an exception it raises is logged).
    """
