"""The platform's REST calls (token minting and friends), on `requests`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from voicesync._log import redact
from voicesync.errors import AuthenticationError, ConnectError, ServerError


def rest_get(url: str, params: Mapping[str, str], api_key: str,
             timeout: float) -> dict[str, Any]:
    """GET a JSON object with the key as a bearer token; errors become voicesync errors."""
    try:
        response = requests.get(url, params=dict(params), timeout=timeout,
                                headers={"Authorization": f"Bearer {api_key}"})
    except requests.RequestException as exc:
        raise ConnectError(f"could not reach {url}: {type(exc).__name__}", url=url) from None
    try:
        data = response.json()
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    if response.status_code in (401, 403):
        raise AuthenticationError(
            f"the platform refused the API key for {url} (HTTP {response.status_code})", url=url)
    if response.status_code >= 400:
        detail = data.get("detail") or data.get("error") or f"HTTP {response.status_code}"
        detail = redact(str(detail), api_key)  # a server may echo the key back
        raise ServerError(f"{url} failed: {detail}", code=str(response.status_code),
                          server_message=str(detail))
    return data
