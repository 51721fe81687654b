"""The API gateway of `skitai.enable_gateway()`: the guard of every mounted alias (the reverse
proxy's `AliasMount.guard`), which asks `apiguard.decide` and either answers the refusal or lets
the request go on to a member with the verified claim in the `X-Gateway-Claim` field.

What a client sends never passes for what the gateway vouches for: its own `X-Gateway-Claim`
fields are removed from every request, and its `Authorization` (the token) too, since the
member gets the verified claim instead. The refusal and its reason are logged with the
request's gtxid (the request log line has it too).
"""
from __future__ import annotations

import logging
from typing import Any

from skitai.plugin import Exchange, error_body, error_headers, status_line

from .apiguard import CLAIM_HEADER, GuardRequest, Refuse, TokenVerifier, claim_header, decide

log = logging.getLogger("skitai.gateway.api")

_DROPPED = frozenset(("authorization", CLAIM_HEADER.lower()))


class GatewayGuard:
    def __init__(self, config: Any) -> None:
        self.settings = config.api_gateway
        self.verifier = TokenVerifier(self.settings) if self.settings.enable_auth else None
        self.auth_handler = config.auth_handler

    def __call__(self, exchange: Exchange, alias: Any) -> tuple[str, list[tuple[str, str]], bytes] | None:
        request = GuardRequest(exchange.method, exchange.path, exchange.headers,
                               exchange.client[0] if exchange.client else "")
        verdict = decide(request, alias, self.settings, self.verifier, self.auth_handler)
        if isinstance(verdict, Refuse):
            log.info("gateway: %s %s to %s refused %d: %s (gtxid %s)", exchange.method, exchange.path, alias.name,
                     verdict.status, verdict.detail, exchange.transaction.gtxid)
            return (status_line(verdict.status), [*error_headers(), *verdict.headers],
                    error_body(verdict.status, verdict.detail))
        exchange.headers[:] = [(name, value) for name, value in exchange.headers if name not in _DROPPED]
        if verdict.claim is not None:
            name, value = claim_header(verdict.claim)
            exchange.headers.append((name.lower(), value))
        return None
