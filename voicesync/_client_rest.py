"""What `Client` offers web apps: its `rest` resources, browser tokens for its agents, and
(from `ClientEvents`, `_feed.py`) event feeds for dashboards."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from voicesync._feed import ClientEvents

if TYPE_CHECKING:
    from voicesync._client_ports import ClientPorts
    from voicesync.rest import Channel, Rest, Scope, Token


class ClientRest(ClientEvents):
    """Mixed into `Client`; every method may be called from any thread."""

    _rest: Rest
    _ports: ClientPorts

    @property
    def rest(self) -> Rest:
        """The platform's REST calls with this client's key and `http_url`: tokens, voices,
        phone numbers, balance, knowledge bases (at ``$PINECALL_PLAYGROUND_URL``, else the
        hosted API). Works without connecting; any thread."""
        return self._rest

    def create_token(self, channel: Channel, agent_id: str | Sequence[str], *,
                     metadata: Mapping[str, Any] | None = None, scope: Scope | None = None,
                     call_id: str | None = None, timeout: float = 10.0) -> Token:
        """Mint a browser token for one agent or (``stream``) several, e.g. a dashboard's.

        Agents of this client are waited for first (their registration, up to `timeout`),
        so the platform knows them; then see `voicesync.rest.Rest.create_token`. Any
        thread; blocks.
        """
        ids = [agent_id] if isinstance(agent_id, str) else list(agent_id)
        for wire_id in ids:
            local = self._ports.agent(wire_id)
            if local is not None:
                local.wait_ready(timeout)
        return self._rest._with_timeout(timeout).create_token(
            channel, ids, metadata=metadata, scope=scope, call_id=call_id)
