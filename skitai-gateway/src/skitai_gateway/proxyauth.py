"""`Proxy-Authorization: Basic` for the forward proxy (RFC 9110 11.7.1, RFC 7617): a request
without valid credentials is answered 407 with a `Proxy-Authenticate` challenge. Sans-IO: the
header's value in, a verdict out."""
from __future__ import annotations

import base64
import binascii
import hmac


class ProxyCredentials:
    def __init__(self, users: dict[str, str], realm: str) -> None:
        if any(not isinstance(name, str) or ":" in name or not isinstance(password, str)
               for name, password in users.items()):
            raise ValueError("enable_proxy(users=...): user names (without ':') and passwords are strings")
        self.users = {name.encode(): password.encode() for name, password in users.items()}
        self.challenge = [("Proxy-Authenticate", f'Basic realm="{_quoted(realm)}", charset="UTF-8"')]

    def user_of(self, header: str | None) -> str | None:
        """The user the `Proxy-Authorization` value `header` proves, or None (absent, not Basic,
        malformed, unknown user, wrong password)."""
        if not header:
            return None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
        name, colon, password = decoded.partition(b":")
        expected = self.users.get(name)
        # compared even for an unknown user, so timing does not tell which users exist
        matches = hmac.compare_digest(password, expected if expected is not None else b"\0" + password)
        if not colon or expected is None or not matches:
            return None
        return name.decode("utf-8", "replace")


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
