"""The platform's REST calls (token minting and friends), on `requests`.

Every request carries the API key, so none of them follows a redirect (the key would
go to a host nobody checked), and a loopback base URL is never sent through a proxy
from the environment (the request would leave the machine in the clear).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from voicesync._log import redact
from voicesync.errors import AuthenticationError, ConnectError, ServerError


def rest_get(url: str, params: Mapping[str, str], api_key: str, timeout: float, *,
             direct: bool = False) -> dict[str, Any]:
    """GET a JSON object with the key as a bearer token; errors become voicesync errors.

    `direct` (a loopback base URL) bypasses proxies configured in the environment.
    """
    import requests  # late: loaded with the first REST call, not with `import voicesync`

    try:
        with requests.Session() as session:
            session.trust_env = not direct  # no proxy (nor .netrc) from the environment
            response = session.get(url, params=dict(params), timeout=timeout,
                                   headers={"Authorization": f"Bearer {api_key}"},
                                   allow_redirects=False)
    except requests.RequestException as exc:
        raise ConnectError(f"could not reach {url}: {type(exc).__name__}", url=url) from None
    if response.is_redirect:
        raise ConnectError(
            f"{url} answered with a redirect (HTTP {response.status_code}); voicesync does not "
            "follow redirects with the API key: set http_url= to the final address", url=url)
    try:  # the key is removed from the body before anything reads it
        data = json.loads(redact(response.text, api_key))
    except (ValueError, RecursionError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    if response.status_code in (401, 403):
        raise AuthenticationError(
            f"the platform refused the API key for {url} (HTTP {response.status_code})", url=url)
    if response.status_code >= 400:
        detail = data.get("detail") or data.get("error") or f"HTTP {response.status_code}"
        detail = redact(str(detail), api_key)
        raise ServerError(f"{url} failed: {detail}", code=str(response.status_code),
                          server_message=str(detail))
    return data
