"""An agent's registration as the reader sees it and as `wait_ready` waits for it:
acknowledged, refused for good, or held by another connection and retried (§2.6).
Mixed into `Agent`."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from voicesync import _backoff
from voicesync._backoff import ConflictEpisode
from voicesync._dialing import POLL
from voicesync.errors import AgentConflictError, RegistrationError, RequestTimeout

if TYPE_CHECKING:
    from voicesync._uplink import Uplink

logger = logging.getLogger(__name__)


class Registration:
    """`wait_ready` (any thread but the reader) and the reader's updates of the state it
    waits on, all under the agent's lock."""

    id: str
    _lock: threading.RLock
    _ready: threading.Event
    _settled: threading.Event  # ready, or registration failed for good
    _failed: RegistrationError | None
    conflict: ConflictEpisode | None

    if TYPE_CHECKING:
        def _require_uplink(self) -> Uplink: ...

    def wait_ready(self, timeout: float | None = 10.0) -> None:
        """Block until `agent.created`/`agent.resumed`. Any thread but the reader.

        Raises at once NotConnectedError (the client is neither connected nor
        connecting), AgentConflictError (the id is held elsewhere; voicesync keeps
        retrying in the background) or the RegistrationError that ended registration;
        RequestTimeout after `timeout`.
        """
        what = f"the registration of agent {self.id!r}"
        uplink = self._require_uplink()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            uplink.require_connection(what)
            if self._failed is not None:
                raise self._failed
            self._raise_if_conflict()
            if self._ready.is_set():
                return
            remaining = POLL if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                self._raise_if_conflict(final=True)
                raise RequestTimeout(
                    f"agent {self.id!r} was not acknowledged within {timeout:g} s "
                    f"(waited for agent.created); last seen: {uplink.link_state()}, and no "
                    "answer to agent.create")
            self._settled.wait(min(remaining, POLL))

    def _conflict_retry(self, holder_alive: object, retry_after: float | None) -> float | None:
        """The id is held elsewhere (reader thread): seconds until agent.create is sent
        again, or None once the retry budget is spent (§2.6)."""
        now = time.monotonic()
        with self._lock:
            if self.conflict is None:
                self.conflict = ConflictEpisode(started_at=now)
                logger.warning("agent %s is held by another connection; retrying", self.id)
            self.conflict.hint(holder_alive, now)
            return self.conflict.next_delay(retry_after, now)

    def _raise_if_conflict(self, *, final: bool = False) -> None:
        """Raise AgentConflictError while another connection holds this id (§2.6).

        A holder the platform says is alive raises at once; a possibly stale one (the
        retry will likely win) only when the wait is over (`final`).
        """
        episode = self.conflict
        if episode is None or episode.attempt == 0:  # attempt 0: not yet fully recorded
            return
        if not (episode.holder_alive or final):
            return
        left = max(0.0, _backoff.CONFLICT_BUDGET - (time.monotonic() - episode.started_at))
        alive = "alive" if episode.holder_alive else "possibly stale"
        raise AgentConflictError(
            f"agent {self.id!r} is held by another connection (holder {alive}); voicesync "
            f"keeps retrying the registration for {left:.0f} s more. Stop the other process "
            "(a second worker or copy of this app?) or use another agent id",
            agent_id=self.id, reason="retrying", holder_alive=episode.holder_alive,
            retry_remaining=left)

    def _unregistered(self) -> None:
        with self._lock:
            self._ready.clear()
            if self._failed is None:
                self._settled.clear()
            self.conflict = None

    def _fail(self, error: RegistrationError) -> None:
        with self._lock:
            self._failed = error
            self._ready.clear()
            self._settled.set()
