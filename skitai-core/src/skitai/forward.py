"""`skitai.enable_forward`: plain HTTP answered with a redirect to https, and `www.<domain>`
with a redirect to `<domain>`, the two `return 301` blocks of a usual nginx setup.

`ForwardRules` decides from plain values (sans-IO); `ForwardHandler` applies it to requests
ahead of the mount table, whatever protocol carried them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .exchange import Exchange, RequestHandler, split_host
from .statuses import error_body, error_headers, status_line

_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")


class BadHost(ValueError):
    """A Host header that cannot be put into a Location."""


def url_host(address: str) -> str:
    """An address as a URL writes it: IPv6 in brackets."""
    return f"[{address}]" if ":" in address else address


def checked_host(host: str) -> tuple[str, str]:
    """The name and port of a Host header that is safe to put into a Location."""
    name, port = split_host(host)
    if not _HOSTNAME.fullmatch(name) or not (port == "" or port.isdigit()):
        raise BadHost(f"invalid Host header: {host!r}")
    return name, port


@dataclass(frozen=True)
class ForwardRules:
    to_port: int = 443
    domain: str | None = None

    def location(self, scheme: str, host: str | None, local_address: str, path: str, query: str) -> str | None:
        """Where a request must go instead, or None when it is served here.

        `host` is the Host header (None without one), `local_address` the address the request
        arrived at. Plain HTTP goes to https on `to_port` at the domain, or else at the host it
        asked for; over https, `www.<domain>` goes to `<domain>` (same port). Raises `BadHost`
        when the host it would redirect to cannot be written into a URL.
        """
        if scheme == "http":
            if self.domain:
                name = self.domain
            else:
                name = checked_host(host)[0] if host else url_host(local_address)
            port = "" if self.to_port == 443 else f":{self.to_port}"
            return f"https://{name}{port}{_target(path, query)}"
        if self.domain and host:
            name, port = split_host(host)
            if name.lower() == "www." + self.domain and (port == "" or port.isdigit()):
                return f"https://{self.domain}{':' + port if port else ''}{_target(path, query)}"
        return None


def _target(path: str, query: str) -> str:
    if not path.startswith("/"):
        path = "/"  # OPTIONS * and the like: the site's root is the nearest thing
    return f"{path}?{query}" if query else path


class Reply(RequestHandler):
    """A fixed short answer decided while resolving the request."""

    def __init__(self, status: int, detail: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        self.status = status
        self.detail = detail
        self.headers = headers

    def handle(self, exchange: Exchange) -> None:
        exchange.send_response(status_line(self.status), [*self.headers, *error_headers()],
                               error_body(self.status, self.detail))


class ForwardHandler(RequestHandler):
    """Registered by the built-in `forward` plugin ahead of the mount table when
    `skitai.enable_forward` was called: redirects what `rules` say, passes the rest on."""

    def __init__(self, rules: ForwardRules) -> None:
        self.rules = rules

    def resolve(self, exchange: Exchange) -> RequestHandler | None:
        try:
            location = self.rules.location(exchange.scheme, exchange.header("host"), exchange.server[0],
                                           exchange.path, exchange.query)
        except BadHost as error:
            return Reply(400, str(error))
        return None if location is None else Reply(301, location, (("Location", location),))
