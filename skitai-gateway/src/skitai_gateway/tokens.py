"""Bearer tokens of the API gateway (`skitai.enable_gateway`), verified with PyJWT: its signature
(HS* with the secret; RS*, ES*, PS*, EdDSA with the public key or the JWKS key its `kid` names),
only with the configured algorithms (never `none`, never an HMAC with a public key), and `exp`,
`nbf` (with `leeway`), `aud`, `iss`. A module of its own, imported only when the gateway checks
tokens: PyJWT with cryptography costs each worker about 8 MiB."""
from __future__ import annotations

from typing import Any

import jwt

from .apiguard import InvalidToken

HMAC_ALGORITHMS = frozenset(("HS256", "HS384", "HS512"))
KEY_ALGORITHMS = frozenset(("RS256", "RS384", "RS512", "ES256", "ES256K", "ES384", "ES512",
                            "PS256", "PS384", "PS512", "EdDSA"))


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
        """The verified claim of `token`; `InvalidToken`, saying why, otherwise."""
        try:
            return self._verified(token)
        except jwt.PyJWTError as error:  # InvalidTokenError, and InvalidKeyError for an unknown kid
            raise InvalidToken(token_error(error)) from error

    def _verified(self, token: str) -> dict:
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


# the first class the error is an instance of names it (InvalidSignatureError is a DecodeError)
TOKEN_ERRORS = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet"),
    (jwt.InvalidAudienceError, "the token is not for this audience"),
    (jwt.InvalidIssuerError, "the token's issuer is not accepted"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
    (jwt.InvalidAlgorithmError, "the token's algorithm is not accepted"),
    (jwt.InvalidKeyError, "the token's key is unknown"),
    (jwt.DecodeError, "the token is malformed"),
)


def token_error(error: jwt.PyJWTError) -> str:
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"the token lacks the claim {error.claim}"
    return next((text for kind, text in TOKEN_ERRORS if isinstance(error, kind)), "the token is invalid")
