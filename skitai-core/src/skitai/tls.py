"""The server's TLS context (`skitai.enable_ssl`): modern defaults, and certificate errors
explained at startup.

The master builds the context before it drops root privileges and before it forks, so a key
only root may read (Let's Encrypt's `privkey.pem`) still loads, and every worker shares the same
context, session ticket keys included, so a client resumes its session whichever worker accepts.
"""
from __future__ import annotations

import os
import ssl
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .kernel import Kernel

# TLS 1.2 suites: ECDHE key exchange (forward secrecy) with AEAD ciphers only. TLS 1.3 suites
# are all of that kind already and are not affected by this string.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


class TLSConfigError(ValueError):
    """The certificate or key of `skitai.enable_ssl` cannot be used; the message says why."""


def server_context(certfile: str, keyfile: str, passphrase: str | bytes | None = None,
                   alpn_ids: list[str] | tuple[str, ...] = ()) -> ssl.SSLContext:
    """A server-side context: TLS 1.2 at least, ECDHE+AEAD for TLS 1.2, no compression (CRIME),
    no renegotiation (a client-driven CPU cost and a history of bugs), and `alpn_ids` offered in
    that order of preference."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= (ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_SINGLE_ECDH_USE
                        | getattr(ssl, "OP_NO_RENEGOTIATION", 0))
    if alpn_ids:
        context.set_alpn_protocols(list(alpn_ids))
    load_certificate(context, certfile, keyfile, passphrase)
    return context


def context_for(kernel: "Kernel") -> ssl.SSLContext | None:
    """The context `skitai.enable_ssl` asked for, offering the registered protocols' ALPN ids;
    None when the server speaks plain HTTP."""
    config = kernel.config
    if not config.ssl_certfile:
        return None
    return server_context(config.ssl_certfile, config.ssl_keyfile, config.ssl_passphrase,
                          kernel.protocols.alpn_ids())


def unreadable_files(config) -> list[str]:
    """The certificate and key files this process could not read again: a reload re-runs the
    script, and once root privileges are dropped a root-only key is out of reach."""
    paths = [config.ssl_certfile, config.ssl_keyfile] if config.ssl_certfile else []
    return [path for path in paths if not os.access(path, os.R_OK)]


def load_certificate(context: ssl.SSLContext, certfile: str, keyfile: str,
                     passphrase: str | bytes | None) -> None:
    certfile, keyfile = os.path.abspath(certfile), os.path.abspath(keyfile)

    def no_passphrase() -> str:
        # Without a callback OpenSSL would prompt on the terminal, hanging a daemon.
        raise TLSConfigError(f"the key {keyfile} is encrypted: give its passphrase, "
                             "skitai.enable_ssl(certfile, keyfile, passphrase)")

    try:
        context.load_cert_chain(certfile, keyfile, password=no_passphrase if passphrase is None else passphrase)
    except OSError as error:  # ssl.SSLError included
        raise TLSConfigError(_explain(error, certfile, keyfile, passphrase)) from None


def _explain(error: OSError, certfile: str, keyfile: str, passphrase: str | bytes | None) -> str:
    """Turn OpenSSL's terse failure ('PEM lib') into what the user has to fix; only runs on
    failure, so the files are read again here rather than on every start."""
    contents = {}
    for path in (certfile, keyfile):
        try:
            with open(path, "rb") as file:
                contents[path] = file.read()
        except OSError as cause:
            return f"cannot read {path}: {cause.strerror}"
    if b"-----BEGIN CERTIFICATE-----" not in contents[certfile]:
        return f"{certfile} holds no PEM certificate"
    if b"PRIVATE KEY-----" not in contents[keyfile]:
        return f"{keyfile} holds no PEM private key"
    if getattr(error, "reason", None) == "KEY_VALUES_MISMATCH":
        return f"the key {keyfile} does not belong to the certificate {certfile}"
    if passphrase is not None and b"ENCRYPTED" in contents[keyfile]:
        return f"wrong passphrase for the key {keyfile}"
    return f"cannot load the certificate {certfile} with the key {keyfile}: {error}"
