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
3. the token is verified with PyJWT: its signature (HS* with the secret; RS*, ES*, PS*, EdDSA
   with the public key or the JWKS key its `kid` names), only with the configured algorithms
   (never `none`, never an HMAC with a public key), and `exp`, `nbf` (with `leeway`), `aud`,
   `iss` (401 `invalid_token` with a description of what failed);
4. the app's auth handler (`skitai.set_auth_handler`) may change the claim or refuse (401);
5. the alias's `role` must be among the claim's roles (403 `insufficient_scope`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

import jwt

HMAC_ALGORITHMS = frozenset(("HS256", "HS384", "HS512"))
KEY_ALGORITHMS = frozenset(("RS256", "RS384", "RS512", "ES256", "ES256K", "ES384", "ES512",
                            "PS256", "PS384", "PS512", "EdDSA"))
CLAIM_HEADER = "X-Gateway-Claim"  # the verified claim as the member receives it (JSON, ASCII)


@dataclass(frozen=True)
class GuardRequest:
    method: str
    path: str
    headers: list[tuple[str, str]]  # lower-case names
    client: str                      # the client's address


@dataclass(frozen=True)
class Allow:
    claim: dict | None  # None when authentication is off


@dataclass(frozen=True)
class Refuse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    detail: str = ""


class TokenVerifier:
    """The keys and rules tokens are verified by, loaded once from the gateway's settings
    (a missing or unreadable key file is a `ValueError` naming it, at start-up)."""

    def __init__(self, settings: Any) -> None:
        algorithms = tuple(settings.algorithms)
        unknown = [name for name in algorithms if name not in HMAC_ALGORITHMS | KEY_ALGORITHMS]
        if unknown or not algorithms:
            raise ValueError(f"enable_gateway(algorithms=...): {', '.join(unknown) or 'none given'}; "
                             f"use {', '.join(sorted(HMAC_ALGORITHMS | KEY_ALGORITHMS))}")
        self.algorithms = algorithms
        secret = settings.secret
        self.secret = secret.encode() if isinstance(secret, str) else secret
        if any(name in HMAC_ALGORITHMS for name in algorithms) and not self.secret:
            raise ValueError("enable_gateway: an HS* algorithm needs the secret")
        self.public_key = _read(settings.public_key, "public_key") if settings.public_key else None
        self.jwks = None
        if settings.jwks:
            try:
                self.jwks = jwt.PyJWKSet.from_json(_read(settings.jwks, "jwks").decode("utf-8"))
            except (jwt.PyJWKSetError, jwt.InvalidKeyError, ValueError) as error:
                raise ValueError(f"enable_gateway(jwks={settings.jwks!r}): {error}") from None
        if any(name in KEY_ALGORITHMS for name in algorithms) and not (self.public_key or self.jwks):
            raise ValueError("enable_gateway: RS256, ES256 ... need a public_key or a jwks file")
        self.audience = list(settings.audience) or None
        self.issuer = settings.issuer
        self.leeway = settings.leeway

    def claim_of(self, token: str) -> dict:
        """The verified claim of `token`; a `jwt.PyJWTError` otherwise."""
        header = jwt.get_unverified_header(token)
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise jwt.InvalidAlgorithmError(f"the algorithm {algorithm!r} is not accepted")
        key = self.secret if algorithm in HMAC_ALGORITHMS else self._public_key(header)
        return jwt.decode(token, key, algorithms=[algorithm], audience=self.audience, issuer=self.issuer,
                          leeway=self.leeway)

    def _public_key(self, header: dict) -> Any:
        kid = header.get("kid")
        if self.jwks is not None:
            if kid is not None:
                try:
                    return self.jwks[kid].key
                except KeyError:
                    raise jwt.InvalidKeyError(f"no key {kid!r} in the key set") from None
            if len(self.jwks.keys) == 1:
                return self.jwks.keys[0].key
            if self.public_key is None:
                raise jwt.InvalidKeyError("the token names no key (kid) of the key set")
        return self.public_key


def _read(path: str, setting: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise ValueError(f"enable_gateway({setting}={path!r}): {error.strerror}") from None


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
    except jwt.PyJWTError as error:  # InvalidTokenError, and InvalidKeyError for an unknown kid
        description = token_error(error)
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


def token_error(error: jwt.PyJWTError) -> str:
    if isinstance(error, jwt.ExpiredSignatureError):
        return "the token has expired"
    if isinstance(error, jwt.ImmatureSignatureError):
        return "the token is not valid yet"
    if isinstance(error, jwt.InvalidAudienceError):
        return "the token is not for this audience"
    if isinstance(error, jwt.InvalidIssuerError):
        return "the token's issuer is not accepted"
    if isinstance(error, jwt.InvalidSignatureError):
        return "the token's signature does not verify"
    if isinstance(error, jwt.InvalidAlgorithmError):
        return "the token's algorithm is not accepted"
    if isinstance(error, jwt.InvalidKeyError):
        return "the token's key is unknown"
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"the token lacks the claim {error.claim}"
    if isinstance(error, jwt.DecodeError):
        return "the token is malformed"
    return "the token is invalid"


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
