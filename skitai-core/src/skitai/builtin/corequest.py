"""Corequests as a built-in plugin: each server process gets its `was` at start, the core's
background services (`was.Thread`, `was.Process`, `was.Subprocess`) are registered through the
same hook as any plugin's, and everything is stopped with the server."""
from ..corequest.background import ProcessDriver, SubprocessDriver, ThreadDriver
from ..corequest.was import Was
from ..plugin import hookimpl


@hookimpl(tryfirst=True)
def skitai_server_start(server):
    # first, so other plugins' start hooks find `server.was`
    server.was = Was(server)
    server.hook.skitai_register_services(was=server.was)


@hookimpl
def skitai_register_services(was):
    was.add_service("Thread", ThreadDriver(was))
    was.add_service("Process", ProcessDriver(was))
    was.add_service("Subprocess", SubprocessDriver(was))


@hookimpl
def skitai_server_stop(server):
    if server.was is not None:
        server.was.close()
