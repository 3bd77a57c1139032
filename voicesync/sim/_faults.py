"""The simulator's fault injection (docs/sim.md): raw frames, dropped and displaced
connections, withheld events. Mixed into `Simulator`; every method may be called from any
thread (the platform's lock guards what they touch)."""

from __future__ import annotations

from typing import Any

from voicesync.sim._platform import Platform
from voicesync.sim._util import JsonDict, slugify


class Faults:
    """What a test does to the simulator's connections; mixed into `Simulator`."""

    _platform: Platform

    @property
    def connections(self) -> list[int]:
        """Ids of the live client connections, oldest first."""
        with self._platform.lock:
            return sorted(self._platform.conns)

    def _conn(self, conn_id: int | None) -> Any:
        with self._platform.lock:
            conns = self._platform.conns
            if conn_id is None:
                if not conns:
                    raise LookupError("no client is connected")
                return conns[max(conns)]
            return conns[conn_id]

    def send(self, frame: JsonDict | str, conn: int | None = None) -> None:
        """Send a raw frame (a dict as JSON, a str verbatim) to a connection (default: newest)."""
        target = self._conn(conn)
        if isinstance(frame, str):
            target.send_raw(frame)
        else:
            target.send_now(dict(frame))

    def drop(self, conn: int | None = None, code: int = 1011, reason: str = "", *,
             abrupt: bool = False) -> None:
        """Close a connection with `code`/`reason`, or `abrupt`ly without a close frame.

        Its calls, agents and numbers are released at once (calls end "disconnected"):
        nothing is played to a caller after the last frame the client can still receive,
        so the record of spoken words stays what the client saw.
        """
        target = self._conn(conn)
        target.drop(code, reason, abrupt=abrupt)
        self._platform.release_conn(target)  # again when its socket is gone: a no-op

    def displace(self, agent_id: str) -> None:
        """`agent.displaced` then close 4001 "Displaced by new connection" on its holder."""
        with self._platform.lock:
            agent = self._platform.agents[slugify(agent_id)]
            agent.conn.send({"event": "agent.displaced", "agent_id": agent.slug,
                             "reason": "Displaced by new connection"})
            agent.conn.drop(4001, "Displaced by new connection")

    def withhold(self, *events: str) -> None:
        """Stop sending these events (e.g. "connected", "agent.created", "history.updated")."""
        with self._platform.withholds.lock:
            self._platform.withholds.events.update(events)

    def release(self, *events: str) -> None:
        """Stop withholding `events` (all if none given) and send what was held, in order."""
        for conn, frame in self._platform.withholds.release(set(events) if events else None):
            conn.send_now(frame)
