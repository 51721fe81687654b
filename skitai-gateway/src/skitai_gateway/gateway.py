"""The guard of every mounted alias (the reverse proxy's `AliasMount.guard`): it asks
`apiguard.decide` and either answers the refusal or lets the request go on to a member, with the
verified claim in the `X-Gateway-Claim` field when `skitai.enable_gateway()` checks tokens.

Without `enable_gateway()` the guard still holds what an alias declares: its `source` networks,
and its `role` (which no request can show without tokens: 403), so an alias meant for the
gateway is never served open by a script that forgot to enable it.

What a client sends never passes for what the gateway vouches for: its own `X-Gateway-Claim`
fields are removed from every request, and a verified token's `Authorization` too, since the
member gets the claim instead. A refusal and its reason are logged with the request's gtxid
(the request log line has it too).
"""
from __future__ import annotations

import logging
from typing import Any

from skitai.config import ApiGatewaySettings
from skitai.plugin import Exchange, error_body, error_headers, import_feature, status_line

from .apiguard import CLAIM_HEADER, GuardRequest, Refuse, claim_header, decide

log = logging.getLogger("skitai.gateway.api")

_CLAIM = CLAIM_HEADER.lower()
_WITHOUT_GATEWAY = ApiGatewaySettings(enable_auth=False)


class GatewayGuard:
    def __init__(self, config: Any) -> None:
        self.settings = config.api_gateway or _WITHOUT_GATEWAY
        self.verifier = None
        if self.settings.enable_auth:  # PyJWT only then (see `tokens`)
            tokens = import_feature("skitai_gateway.tokens", "skitai.enable_gateway(enable_auth=True)",
                                    "skitai-gateway")
            self.verifier = tokens.TokenVerifier(self.settings)
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
        dropped = (_CLAIM, "authorization") if verdict.claim is not None else (_CLAIM,)
        exchange.headers[:] = [(name, value) for name, value in exchange.headers if name not in dropped]
        if verdict.claim is not None:
            name, value = claim_header(verdict.claim)
            exchange.headers.append((name.lower(), value))
        return None
