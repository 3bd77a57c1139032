"""Where the client connects: URL forms, the key's allowed routes, the TLS context."""

from __future__ import annotations

import logging
import os
import ssl
from typing import NamedTuple
from urllib.parse import urlsplit

from voicesync._rest import base_url, is_loopback, refuse_plain
from voicesync.errors import ConfigurationError

logger = logging.getLogger("voicesync.client")  # the records users already filter on

DEFAULT_URL = "wss://voice.pinecall.io"
_LOCAL_KEY = "local-dev"  # what a loopback simulator accepts when no key is configured


class Settings(NamedTuple):
    url: str  # the WebSocket URL, ending in /client
    http_url: str  # the REST base URL
    knowledge_url: str  # the knowledge-base API's base URL
    api_key: str


def settings(url: str | None, http_url: str | None, api_key: str | None,
             allow_insecure: bool) -> Settings:
    """The client's URLs and key, from the arguments and the environment.

    The key travels only over TLS or to loopback, on every URL it may be sent to
    (`voicesync._rest.refuse_plain`); with `allow_insecure` the app opted out: say so.
    """
    from voicesync.rest import knowledge_base_url  # here: `import voicesync` stays fast

    ws_url, derived_http = endpoints(
        (url or os.environ.get("PINECALL_URL") or DEFAULT_URL).strip())
    rest_url = base_url(http_url or derived_http, "http_url")
    knowledge_url, knowledge_setting = knowledge_base_url()
    plain = refuse_plain({"url": ws_url, "http_url": rest_url,
                          knowledge_setting: knowledge_url}, allow_insecure)
    if plain:
        hosts = sorted({urlsplit(u).hostname or u for u in plain})
        logger.warning("allow_insecure=True: the API key travels unencrypted to %s",
                       ", ".join(hosts))
    key = api_key or os.environ.get("PINECALL_API_KEY") or (
        _LOCAL_KEY if is_loopback(ws_url) else None)
    if not key:
        raise ConfigurationError(
            "no API key: pass Client(api_key=...) or set PINECALL_API_KEY (or point "
            "url= at a local voicesync.sim simulator)")
    return Settings(ws_url, rest_url, knowledge_url, key)


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


def tls_context(context: ssl.SSLContext | None, verify: bool) -> ssl.SSLContext:
    if context is not None:
        return context
    context = ssl.create_default_context()
    if not verify:
        logger.warning("TLS certificate verification is OFF (tls_verify=False)")
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
