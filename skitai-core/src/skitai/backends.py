"""Backend aliases: named groups of upstream servers a script declares once and corequests use
by name (`was.get("@members/users")`, `was.db("@mypg")`).

The core keeps the alias table and reads the members in the manual's syntax; what talks to a
kind of backend (HTTP, PostgreSQL, Redis ...) is a plugin's business. A plugin says which kinds
it serves from its `skitai_register_backends(backends)` hook, called when the kernel is created
(a script declares its aliases before `skitai.run()`). An alias of a kind no installed plugin
serves is refused at `skitai.alias()` time with the distribution to install, not at the first
request that needs it.

Member syntax (the manual's "Adding Backend Server Alias")::

    [user[:password]@]host[:port][/database] [weight]

`%40` (any %-escape) in the user or password stands for a character that would break the
syntax, such as `@`. An IPv6 host is written in brackets (`[::1]:5432`). Kinds whose members are
files (SQLite databases, a Django settings module) take a path instead, relative to the
script's folder, optionally followed by a weight.
"""
from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

from .startup import StartupError

# The alias kinds of the manual. The values are the strings the manual also writes by hand
# (`skitai.alias("@api", "https", ...)`).
PROTO_HTTP = "http"
PROTO_HTTPS = "https"
PROTO_WS = "ws"
PROTO_WSS = "wss"
DB_PGSQL = DB_POSTGRESQL = "postgresql"
DB_SQLITE3 = "sqlite3"
DB_REDIS = "redis"
DB_MONGODB = "mongodb"
DJANGO = "django"

# Other spellings of a kind seen in the manual and in the original Skitai.
_KIND_SYNONYMS = {"pgsql": DB_PGSQL, "postgres": DB_PGSQL, "sqlite": DB_SQLITE3, "mongo": DB_MONGODB}

# Which distribution serves a kind of the manual, for the refusal when it is not installed.
_PROVIDED_BY = {
    PROTO_HTTP: "gateway", PROTO_HTTPS: "gateway", PROTO_WS: "gateway", PROTO_WSS: "gateway",
    DB_PGSQL: "dbi", DB_SQLITE3: "dbi", DB_REDIS: "dbi", DB_MONGODB: "dbi", DJANGO: "dbi",
}
_CONSTANT_NAMES = {PROTO_HTTP: "PROTO_HTTP", PROTO_HTTPS: "PROTO_HTTPS", PROTO_WS: "PROTO_WS",
                   PROTO_WSS: "PROTO_WSS", DB_PGSQL: "DB_PGSQL", DB_SQLITE3: "DB_SQLITE3",
                   DB_REDIS: "DB_REDIS", DB_MONGODB: "DB_MONGODB", DJANGO: "DJANGO"}
_SECURE_KINDS = frozenset((PROTO_HTTPS, PROTO_WSS))


class AliasError(StartupError):
    """An alias the script declared cannot be used: its kind, a member or an option is wrong."""


@dataclass(frozen=True)
class Member:
    """One server of an alias. `path` is set instead of `host` for file kinds."""

    host: str = ""
    port: int | None = None
    user: str = ""
    password: str = ""
    database: str = ""
    weight: int = 1
    path: str = ""

    @property
    def address(self) -> str:
        """`host:port` as a URL authority (an IPv6 host in brackets), or the path."""
        if self.path:
            return self.path
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    def __str__(self) -> str:  # never shows the password
        credentials = f"{self.user}@" if self.user else ""
        database = f"/{self.database}" if self.database else ""
        return f"{credentials}{self.address}{database} {self.weight}"


@dataclass(frozen=True)
class Alias:
    name: str            # with its `@`
    kind: str
    members: tuple[Member, ...]
    role: str = ""       # HTTP kinds: the role a caller of the gateway needs
    sources: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    ssl: bool = False    # always True for PROTO_HTTPS and PROTO_WSS

    def allows(self, client_address: str) -> bool:
        """Whether a client address is within `source` (every address when none was given)."""
        if not self.sources:
            return True
        try:
            address = ipaddress.ip_address(client_address)
        except ValueError:
            return False
        return any(address in network for network in self.sources)


@dataclass
class BackendKind:
    kind: str
    plugin: str                  # who serves it, for messages
    paths: bool = False          # members are files, not network addresses
    validate: Callable[[Alias], None] | None = None


@dataclass
class BackendRegistry:
    """The alias kinds the loaded plugins serve, filled by `skitai_register_backends`."""

    kinds: dict[str, BackendKind] = field(default_factory=dict)

    def add(self, kind: str, plugin: str, *, paths: bool = False,
            validate: Callable[[Alias], None] | None = None) -> None:
        """Serve alias kind `kind` (one of the `skitai.PROTO_*`, `DB_*`, `DJANGO` values, or a
        kind of the plugin's own). `plugin` names the plugin in messages. `paths`: members
        are files relative to the script's folder. `validate(alias)` may raise `ValueError`
        to refuse an alias when it is declared (a database name missing, say)."""
        kind = canonical_kind(kind)
        if kind in self.kinds:
            raise ValueError(f"alias kind {kind!r} is served by {self.kinds[kind].plugin} already")
        self.kinds[kind] = BackendKind(kind, plugin, paths, validate)


class AliasTable:
    """The aliases a script declared, by name."""

    def __init__(self, backends: BackendRegistry, root: str) -> None:
        self.backends = backends
        self.root = root  # the script's folder: file members are relative to it
        self._aliases: dict[str, Alias] = {}

    def add(self, name: str, kind: str, members: str | Iterable[str], role: str = "",
            source: str = "", ssl: bool = False) -> Alias:
        if not isinstance(name, str) or not name.lstrip("@") or any(c in name for c in "/ \t"):
            raise AliasError(f"alias name {name!r}: a name such as '@members' (no '/' or spaces)")
        name = name if name.startswith("@") else "@" + name
        kind = canonical_kind(kind)
        served = self.backends.kinds.get(kind)
        if served is None:
            raise AliasError(missing_kind_message(kind))
        if isinstance(members, str):
            members = [members]
        members = tuple(parse_member(text, paths=served.paths, root=self.root) for text in members)
        if not members:
            raise AliasError(f"alias {name}: no members")
        alias = Alias(name, kind, members, role, parse_sources(source), bool(ssl) or kind in _SECURE_KINDS)
        if served.validate is not None:
            try:
                served.validate(alias)
            except ValueError as error:
                raise AliasError(f"alias {name}: {error}") from error
        self._aliases[name] = alias
        return alias

    def get(self, name: str) -> Alias:
        """The alias `name` (`@members`, or `members`); `KeyError` names the declared ones."""
        alias = self._aliases.get(name if name.startswith("@") else "@" + name)
        if alias is None:
            declared = ", ".join(sorted(self._aliases)) or "none"
            raise KeyError(f"no alias {name!r} (declared: {declared})")
        return alias

    def __contains__(self, name: str) -> bool:
        return (name if name.startswith("@") else "@" + name) in self._aliases

    def __iter__(self):
        return iter(self._aliases.values())


def canonical_kind(kind: str) -> str:
    if not isinstance(kind, str):
        raise AliasError(f"alias kind {kind!r}: use skitai.PROTO_HTTP, skitai.DB_PGSQL ...")
    kind = kind.strip().lower()
    return _KIND_SYNONYMS.get(kind, kind)


def missing_kind_message(kind: str) -> str:
    extra = _PROVIDED_BY.get(kind)
    if extra is None:
        known = ", ".join(f"skitai.{name}" for name in _CONSTANT_NAMES.values())
        return f"unknown alias kind {kind!r} (the manual's kinds: {known}; a plugin may add others)"
    return f'{_CONSTANT_NAMES[kind]} needs skitai-{extra}: pip install "skitai[{extra}]"'


def parse_member(text: str, paths: bool = False, root: str = "") -> Member:
    """One member in the manual's syntax (see the module); `paths` for file kinds."""
    if not isinstance(text, str) or not text.strip():
        raise AliasError(f"alias member {text!r}: empty")
    spec, weight = _split_weight(text.strip())
    if paths:
        path = os.path.expanduser(spec)
        return Member(path=os.path.normpath(os.path.join(root, path)), weight=weight)
    credentials, at, address = spec.rpartition("@")
    user = password = ""
    if at:
        user, _, password = credentials.partition(":")
        user, password = unquote(user), unquote(password)
    address, _, database = address.partition("/")
    host, port = _split_address(address, text)
    return Member(host, port, user, password, unquote(database), weight)


def _split_weight(text: str) -> tuple[str, int]:
    spec, _, weight = text.rpartition(" ")
    if not spec:
        return text, 1
    try:
        value = int(weight)
    except ValueError:
        raise AliasError(f"alias member {text!r}: the weight {weight!r} is not a number") from None
    if value < 1:
        raise AliasError(f"alias member {text!r}: the weight must be 1 or more")
    return spec.strip(), value


def _split_address(address: str, text: str) -> tuple[str, int | None]:
    if address.startswith("["):
        host, bracket, rest = address[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise AliasError(f"alias member {text!r}: an IPv6 host is written [::1]:port")
        port = rest[1:]
    else:
        host, _, port = address.partition(":")
    if not host:
        raise AliasError(f"alias member {text!r}: no host")
    if not port:
        return host, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise AliasError(f"alias member {text!r}: port {port!r} is not between 1 and 65535")
    return host, int(port)


def parse_sources(source: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The manual's `source`: comma-separated networks, IPv4 ones possibly shortened as it writes
    them (`192.168.1/24` is 192.168.1.0/24)."""
    networks = []
    for item in (part.strip() for part in (source or "").split(",")):
        if not item:
            continue
        address, slash, bits = item.partition("/")
        if ":" not in address:
            octets = address.split(".")
            address = ".".join(octets + ["0"] * (4 - len(octets)))
        try:
            networks.append(ipaddress.ip_network(address + slash + bits, strict=False))
        except ValueError as error:
            raise AliasError(f"alias source {item!r}: {error}") from None
    return tuple(networks)
