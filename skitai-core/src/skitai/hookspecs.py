"""The whole contract between Skitai and its plugins.

A plugin is a module (or object) with functions named like the specs below and decorated with
`skitai.plugin.hookimpl`. Third-party plugins are found through the entry-point group `skitai`::

    [project.entry-points.skitai]
    myplugin = "myplugin.plugin"

Skitai's own features (HTTP/1.1, WSGI apps, static files) are plugins registered through these
very hooks, listed in `skitai.plugins.DEFAULT_PLUGINS`. Every hook takes keyword arguments only,
so a hook can gain an argument later without breaking existing plugins.
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
    plugins may read and adjust it. Raise `ValueError` with a clear message to refuse a setting.
    """


@hookspec
def skitai_register_protocols(protocols):
    """Register connection protocols on `protocols`, a `skitai.plugin.ProtocolRegistry`.

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
def skitai_register_handlers(handlers):
    """Register request handlers and mount adapters on `handlers`, a
    `skitai.plugin.HandlerRegistry`.

    `handlers.add(handler, priority=500)`: a `skitai.plugin.RequestHandler` asked, lowest
    priority first, whether it takes a request; the mount table is registered at priority 1000,
    so a plugin handler at a lower number sees requests before mounted apps do.

    `handlers.add_adapter(adapter)`: a `skitai.plugin.MountAdapter` that turns an object passed to
    `skitai.mount()` into a handler (the core registers adapters for WSGI apps and static
    directories this way).
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
    """


@hookspec
def skitai_server_start(server):
    """The server is bound and about to serve; `server` is the running `skitai.server.Server`.

    Called on the event loop thread; `server.loop` is the loop, `server.config` the settings.
    """


@hookspec
def skitai_server_stop(server):
    """The server stopped accepting and finished (or gave up on) in-flight requests."""
