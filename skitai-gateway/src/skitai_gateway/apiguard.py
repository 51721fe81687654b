"""The API gateway's decision on one request to a mounted alias (`skitai.enable_gateway`), sans
IO: the request's fields, the alias and the gateway's settings in; `Allow(claim)` or
`Refuse(status, headers, detail)` out. The reverse proxy asks it before forwarding (see
`gateway.GatewayGuard`).

In this order:

1. the alias's `source` networks must hold the client's address (403), so a client outside
   them learns nothing more;
2. with authentication on, `Authorization: Bearer <JWT>` is required (401 with
   `WWW-Authenticate: Bearer realm=...`; RFC 6750 3.1: no error code when no token came, and
   `invalid_request` when the field is doubled or not a bearer token);
3. the token is verified (`tokens.TokenVerifier`: its signature with the configured algorithms
   and keys, `exp`, `nbf`, `aud`, `iss`; 401 `invalid_token` with a description of what failed);
4. the app's auth handler (`skitai.set_auth_handler`) may change the claim or refuse (401);
5. the alias's `role` must be among the claim's roles (403 `insufficient_scope`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .tokens import TokenVerifier

CLAIM_HEADER = "X-Gateway-Claim"  # the verified claim as the member receives it (JSON, ASCII)


@dataclass(frozen=True)
class GuardRequest:
    method: str
    path: str
    headers: list[tuple[str, str]]  # lower-case names
    client: str                      # the client's address


class InvalidToken(ValueError):
    """A token the verifier refuses; the message says why, for the client."""


@dataclass(frozen=True)
class Allow:
    claim: dict | None  # None when authentication is off


@dataclass(frozen=True)
class Refuse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    detail: str = ""


def decide(request: GuardRequest, alias: Any, settings: Any, verifier: TokenVerifier | None,
           auth_handler: Callable[[dict, GuardRequest], dict | None] | None = None) -> Allow | Refuse:
    """Whether `request` may reach `alias` (see the module); `verifier` is None when
    authentication is off."""
    if not alias.allows(request.client):
        return Refuse(403, detail=f"{request.client} is not among the sources of {alias.name}")
    if not settings.enable_auth or verifier is None:
        if alias.role:
            return Refuse(403, detail=f"{alias.name} needs the role {alias.role!r}, and tokens are not checked")
        return Allow(None)
    realm = settings.realm
    values = [value for name, value in request.headers if name == "authorization"]
    if not values:
        return Refuse(401, challenge(realm), "a bearer token is required")
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip()
    if len(values) > 1 or scheme.lower() != "bearer" or not token:
        return Refuse(400, challenge(realm, "invalid_request", "one Authorization: Bearer field is required"),
                      "one Authorization: Bearer field is required")
    try:
        claim = verifier.claim_of(token)
    except InvalidToken as error:
        description = str(error)
        return Refuse(401, challenge(realm, "invalid_token", description), description)
    if auth_handler is not None:
        claim = auth_handler(claim, request)
        if claim is None:
            description = "the token was refused"
            return Refuse(401, challenge(realm, "invalid_token", description), description)
    if alias.role and alias.role not in roles_of(claim, settings.roles_claim):
        description = f"the role {alias.role!r} is required"
        return Refuse(403, challenge(realm, "insufficient_scope", description), description)
    return Allow(claim)


def roles_of(claim: dict, name: str) -> list[str]:
    """The claim's roles: a list, or a string of names separated by spaces or commas (as
    OAuth's `scope`)."""
    roles = claim.get(name)
    if isinstance(roles, str):
        return roles.replace(",", " ").split()
    if isinstance(roles, (list, tuple)):
        return [role for role in roles if isinstance(role, str)]
    return []


def challenge(realm: str, error: str | None = None, description: str | None = None) -> list[tuple[str, str]]:
    """A `WWW-Authenticate: Bearer` challenge (RFC 6750 3): the realm, then the error code and
    its description when there is one."""
    params = [f'realm="{_quotable(realm)}"']
    if error is not None:
        params.append(f'error="{error}"')
    if description:
        params.append(f'error_description="{_quotable(description)}"')
    return [("WWW-Authenticate", "Bearer " + ", ".join(params))]


def _quotable(text: str) -> str:
    """RFC 6750 3: error_description is %x20-21 / %x23-5B / %x5D-7E: no quote, no backslash."""
    return "".join(char if 0x20 <= ord(char) <= 0x7E and char not in '"\\' else "'" if char == '"' else ""
                   for char in text)


def claim_header(claim: dict) -> tuple[str, str]:
    """The claim as the member gets it: compact JSON, non-ASCII escaped."""
    return CLAIM_HEADER, json.dumps(claim, separators=(",", ":"), ensure_ascii=True, sort_keys=True, default=str)
