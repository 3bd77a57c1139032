"""The agents' port: what an agent and its calls (their dials, channels, tools and
history) may read and do on the client they belong to, and nothing more.

`_client_ports.ClientPorts` implements it for a `Client`; an agent receives it when it is
attached (`Agent._attach`) and hands it to its calls, so agent, call, dialing, tool and
history code reads no Client private state and imports no Client at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from voicesync._port import Port
from voicesync._timer import Timers


class Uplink(Protocol):
    """An agent's (and its calls') view of their client. Any thread."""

    def send(self, frame: Mapping[str, Any], *, via: Port | None = None) -> bool:
        """Send now on the current connection; with `via`, only if it still is that one
        (a call's commands never go out on a later connection). False if not sent."""
    def port(self) -> Port | None:
        """The current connection (None while down): what a new call is pinned to."""
    def require_connection(self, what: str) -> None:
        """Raise NotConnectedError unless the client is connected or connecting."""
    def link_state(self) -> str:
        """What the connection looks like now, for timeout messages."""
    def report(self, exc: BaseException, *, log: bool = False, loud: bool = False) -> None:
        """A problem on voicesync's threads: the `error` event, a WARNING, or stderr."""
    def request(self, call_id: str, send: Callable[[Mapping[str, Any]], bool], event: str,
                response: str, *, timeout: float, payload: Mapping[str, Any],
                ) -> Mapping[str, Any]:
        """Send a call's request and block until the platform's answer (or raise)."""
    @property
    def timers(self) -> Timers:
        """The client's timer thread (ended by close()), for a call's history saves."""
