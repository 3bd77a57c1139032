"""Where the client connects: URL forms, loopback detection, the TLS context."""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
from urllib.parse import urlsplit

from voicesync.errors import ConfigurationError

logger = logging.getLogger("voicesync.client")  # the records users already filter on

DEFAULT_URL = "wss://voice.pinecall.io"
_LOCAL_KEY = "local-dev"  # what a loopback simulator accepts when no key is configured


def settings(url: str | None, http_url: str | None, api_key: str | None,
             allow_insecure: bool) -> tuple[str, str, str]:
    """(WebSocket URL, REST base URL, API key) from the arguments and the environment."""
    ws_url, derived_http = endpoints(
        (url or os.environ.get("PINECALL_URL") or DEFAULT_URL).strip())
    loopback = is_loopback(ws_url)
    if ws_url.startswith("ws://") and not loopback and not allow_insecure:
        raise ConfigurationError(
            f"refusing unencrypted {ws_url}: use wss://, or pass allow_insecure=True")
    key = api_key or os.environ.get("PINECALL_API_KEY") or (_LOCAL_KEY if loopback else None)
    if not key:
        raise ConfigurationError(
            "no API key: pass Client(api_key=...) or set PINECALL_API_KEY (or point "
            "url= at a local voicesync.sim simulator)")
    return ws_url, (http_url or derived_http).rstrip("/"), key


def endpoints(base: str) -> tuple[str, str]:
    """(WebSocket URL ending in /client, REST base URL) from one base URL (§1.1)."""
    if base.startswith("http"):
        base = "ws" + base[4:]
    if not base.startswith(("ws://", "wss://")):
        raise ConfigurationError(f"url must start with wss://, ws://, https:// or http://: {base}")
    base = base.rstrip("/")
    if base.endswith("/client"):
        base = base[: -len("/client")]
    return base + "/client", "http" + base[2:]


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_context(context: ssl.SSLContext | None, verify: bool) -> ssl.SSLContext:
    if context is not None:
        return context
    context = ssl.create_default_context()
    if not verify:
        logger.warning("TLS certificate verification is OFF (tls_verify=False)")
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
