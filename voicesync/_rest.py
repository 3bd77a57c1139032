"""The one HTTP request that carries the API key, and the rule for where the key may go.

`voicesync.rest` builds every REST call on `request`; the client and `Rest` check their
base URLs with `refuse_plain`. The guards, each for the same reason (the key is in
every request):

- the key travels only over TLS or to a loopback address, unless the app opted out;
- a redirect is never followed (the key would go to a host nobody checked);
- a loopback URL never goes through a proxy (nor `.netrc`) from the environment (the
  request would leave the machine in the clear);
- the answer's body is redacted before anything reads it (a server may echo the key).
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from voicesync._log import redact
from voicesync.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    NotFoundError,
    RestError,
    UpgradeRequiredError,
)

_KINDS: dict[int, tuple[type[RestError], str]] = {
    402: (UpgradeRequiredError, "; the feature is not on the account's plan: upgrade it to "
                                "use it"),
    404: (NotFoundError, "; check the id"),
}


def is_loopback(url: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1 (``127.0.0.1.example.test`` is not)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def base_url(url: str, setting: str) -> str:
    """An ``http(s)://`` base URL without its trailing slash; `setting` names it in errors."""
    url = url.strip().rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise ConfigurationError(f"{setting} must start with https:// or http://: {url}")
    return url


def refuse_plain(urls: Mapping[str, str], allow_insecure: bool) -> list[str]:
    """The URLs (by the setting they came from) that would carry the key in the clear.

    Refused with a `ConfigurationError` naming the setting unless `allow_insecure`; then
    returned, so the caller can say where the key goes unencrypted.
    """
    plain = [(setting, url) for setting, url in urls.items()
             if url.startswith(("ws://", "http://")) and not is_loopback(url)]
    if plain and not allow_insecure:
        setting, url = plain[0]
        raise ConfigurationError(
            f"refusing unencrypted {url} ({setting}): the API key would travel in the clear; "
            "use wss:// or https://, or pass allow_insecure=True")
    return [url for _, url in plain]


def request(method: str, url: str, api_key: str, timeout: float, *,
            params: Mapping[str, str] | None = None,
            body: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One JSON request with the key as a bearer token; a JSON object back, or a typed error.

    `AuthenticationError` (401/403), `ConnectError` (unreachable, or a redirect),
    `NotFoundError` (404), `UpgradeRequiredError` (402), `RestError` for any other refusal
    and for a success whose body is not a JSON object (an empty body is ``{}``).
    """
    answer = request_bytes(method, url, api_key, timeout, params=params, body=body)
    return json_object(answer, f"{method} {url}")


@dataclass(frozen=True)
class Answer:
    """A successful answer: its status, headers (lower-case names) and body."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    text: str  # the body decoded and redacted; "" for a binary body


def request_bytes(method: str, url: str, api_key: str, timeout: float, *,
                  params: Mapping[str, str] | None = None,
                  body: Mapping[str, Any] | None = None,
                  files: Mapping[str, tuple[str, bytes, str]] | None = None,
                  data: Mapping[str, str] | None = None,
                  accept: str = "application/json") -> Answer:
    """`request`'s guards and typed refusals, for any body: a JSON `body`, or a multipart
    form (`files` by field: (filename, bytes, content type), plus `data` fields)."""
    import requests  # late: loaded with the first REST call, not with `import voicesync`

    try:
        with requests.Session() as session:
            session.trust_env = not is_loopback(url)
            response = session.request(method, url, params=dict(params or {}), json=body,
                                       files=dict(files) if files else None,
                                       data=dict(data) if data else None,
                                       timeout=timeout, allow_redirects=False,
                                       headers={"Authorization": f"Bearer {api_key}",
                                                "Accept": accept})
            content = response.content
    except requests.RequestException as exc:
        raise ConnectError(f"could not reach {url}: {type(exc).__name__}", url=url) from None
    status = response.status_code
    if response.is_redirect:
        raise ConnectError(f"{url} answered with a redirect (HTTP {status}); the API key is "
                           "not sent on: use the final address", url=url)
    if status in (401, 403):
        raise AuthenticationError(f"the platform refused the API key for {url} (HTTP {status})",
                                  url=url)
    kind = response.headers.get("Content-Type", "").lower()
    binary = status < 400 and kind.startswith(("audio/", "application/octet-stream"))
    text = "" if binary else redact(response.text, api_key)
    if status < 400:
        return Answer(status, {k.lower(): v for k, v in response.headers.items()},
                      content, text)
    error = _json_object(text) or {}
    detail = _text(error.get("detail")) or _text(error.get("error")) or (
        text[:200].strip() or f"HTTP {status}")
    kind_error, hint = _KINDS.get(status, (RestError, ""))
    raise kind_error(f"{method} {url} failed (HTTP {status}): {detail}{hint}", status=status,
                     server_message=detail)


def rows(data: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """The objects of a list field (anything else in it, or no list, is skipped)."""
    listed = data.get(key)
    return [r for r in listed if isinstance(r, dict)] if isinstance(listed, list) else []


def json_object(answer: Answer, what: str) -> dict[str, Any]:
    """An answer's body as a JSON object, or a `RestError` naming `what` was asked."""
    data = _json_object(answer.text)
    if data is None:
        raise RestError(f"{what} answered HTTP {answer.status} with a body that is not a JSON "
                        "object", status=answer.status, server_message=answer.text[:200])
    return data


def _json_object(text: str) -> dict[str, Any] | None:
    """The body as a JSON object ({} when empty); None when it is anything else.

    NaN/Infinity and numbers that overflow a float are read as missing values, over-deep
    nesting and over-long integers as not JSON: a hostile answer is refused, not raised.
    """
    if not text.strip():
        return {}
    try:
        data = json.loads(text, parse_constant=lambda _: None, parse_float=_finite_or_none)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _finite_or_none(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
