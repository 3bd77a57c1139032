"""The load driver: plays the platform for one agent connection, in its own process.

    python bench/driver.py --workload '{"calls": 10, ...}' --out driver.json --deadline 120

It prints its port on the first line of stdout, serves one agent connection on
127.0.0.1 (handshake, agent.create, pings), starts the workload's calls once the agent
sends `bench.ready`, plays every turn (user.message + turn.end; spread out, or every
call's turn at once in burst rounds), consumes the
`bot.reply.stream` frames and interrupts half the replies after INTERRUPT_AFTER chunks.
Every timestamp is `time.monotonic_ns()` taken on this side of the socket.

An interruption is `bot.interrupted`, `turn.continued`, then a server `ping` used as a
fence: the client answers pings in order, so its `pong` for that ping proves it had
read the interruption. Chunks of the message received after that pong were written
after the client knew: they are the "chunks after abort" (must be 0). Chunks received
between the interruption and the pong were already on the wire ("in flight").
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import random
from dataclasses import dataclass, field, fields
from typing import Any

from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from workload import (
    AGENT_ID,
    DONE,
    INTERRUPT_AFTER,
    READY,
    TURN_TIMEOUT,
    Workload,
    cpu_seconds,
    now_ns,
    write_json,
)


@dataclass(slots=True)
class Turn:
    call: int
    index: int
    interrupt: bool
    user_id: str
    sent_ns: int = 0  # turn.end written
    message_id: str = ""
    first_ns: int = 0  # first chunk received
    chunks: int = 0  # chunks received before end
    interrupt_ns: int = 0  # bot.interrupted written
    fence_ns: int = 0  # the client's pong for the fence ping received
    end_ns: int = 0  # the reply's end frame received
    in_flight: int = 0  # chunks received after the interruption, before the fence
    after_abort: int = 0  # chunks received after the fence: written after the client knew
    after_end: int = 0  # chunks received after the end frame
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def record(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "done"}


class Platform(asyncio.Protocol):
    """The server side of one agent connection.

    websockets' sans-I/O protocol on a bare asyncio.Protocol: frames are handled in
    data_received and answers written at once, with no coroutine hop in between. That
    costs about half the CPU per frame of websockets' asyncio server, and the receive
    stamps are taken as the bytes come off the socket.
    """

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.turns: list[Turn] = []
        self._by_user: dict[str, Turn] = {}
        self._by_message: dict[str, Turn] = {}
        self._fences: collections.deque[Turn] = collections.deque()
        self._transport: asyncio.Transport | None = None
        self._ws = ServerProtocol(max_size=1 << 20)
        self.ready = asyncio.Event()
        self.closed = asyncio.Event()
        self.strays = 0  # stream frames for no known turn
        self.frames_in = 0
        self.frames_out = 0

    # ----------------------------------------------------------------- the socket

    @property
    def free(self) -> bool:
        return self._transport is None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()

    def data_received(self, data: bytes) -> None:
        received = now_ns()
        ws = self._ws
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Request):
                ws.send_response(ws.accept(event))
            elif event.opcode is Opcode.TEXT:
                self.frames_in += 1
                self._on_frame(json.loads(event.data), received)
        self._flush()
        if ws.close_expected() and self._transport is not None:
            self._transport.close()

    def send(self, frame: dict[str, Any], flush: bool = True) -> None:
        """Queue one frame; `flush=False` leaves it for the next write (a burst is one write)."""
        if self._ws.state is not State.OPEN:
            return
        self.frames_out += 1
        self._ws.send_text(json.dumps(frame, separators=(",", ":")).encode())
        if flush:
            self._flush()

    def _flush(self) -> None:
        out = self._ws.data_to_send()
        if out and self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(out))

    def _on_frame(self, frame: dict[str, Any], received: int) -> None:
        name = frame.get("event")
        if name == "bot.reply.stream":
            self._on_stream(frame, received)
        elif name == "pong":
            if self._fences:
                self._fences.popleft().fence_ns = received
        elif name == "ping":
            self.send({"event": "pong", "timestamp": received // 1_000_000})
        elif name == "connect":
            self.send({"event": "connected", "org_id": "org_bench"})
        elif name == "agent.create":
            self.send({"event": "agent.created", "agent_id": frame.get("agent_id")})
        elif name == READY:
            self.ready.set()

    def _on_stream(self, frame: dict[str, Any], received: int) -> None:
        action = frame.get("action")
        if action == "start":
            turn = self._by_user.get(frame.get("in_reply_to", ""))
            if turn is None or turn.message_id:
                self.strays += 1
                return
            turn.message_id = frame["message_id"]
            self._by_message[turn.message_id] = turn
            return
        turn = self._by_message.get(frame.get("message_id", ""))
        if turn is None:
            self.strays += 1
        elif action == "end":
            if not turn.end_ns:
                turn.end_ns = received
                turn.done.set()
        elif action == "chunk":
            self._on_chunk(turn, received)
            if turn.interrupt and turn.chunks == INTERRUPT_AFTER and not turn.interrupt_ns:
                self._interrupt(turn)

    def _on_chunk(self, turn: Turn, received: int) -> None:
        if turn.end_ns:
            turn.after_end += 1
            return
        turn.chunks += 1
        if turn.chunks == 1:
            turn.first_ns = received
        if turn.fence_ns:
            turn.after_abort += 1
        elif turn.interrupt_ns:
            turn.in_flight += 1

    def _interrupt(self, turn: Turn) -> None:
        call_id = _call_id(turn.call)
        turn.interrupt_ns = now_ns()
        self.send({"event": "bot.interrupted", "agent_id": AGENT_ID, "call_id": call_id,
                   "message_id": turn.message_id, "reason": "user_spoke",
                   "played_ms": 0, "words_spoken": turn.chunks})
        self.send({"event": "turn.continued", "agent_id": AGENT_ID, "call_id": call_id,
                   "turn_id": turn.index + 1})
        self._fences.append(turn)
        self.send({"event": "ping"})

    # ----------------------------------------------------------------- the calls

    def _queue_turn(self, call: int, index: int) -> Turn:
        """user.message + turn.end of one turn, queued but not written."""
        turn = Turn(call, index, self.workload.interrupted(call, index), f"u{call}-{index}")
        self.turns.append(turn)
        self._by_user[turn.user_id] = turn
        call_id, text = _call_id(call), f"question {index} of call {call}"
        self.send({"event": "user.message", "agent_id": AGENT_ID, "call_id": call_id,
                   "message_id": turn.user_id, "text": text, "confidence": 0.95,
                   "turn_id": index + 1}, flush=False)
        self.send({"event": "turn.end", "agent_id": AGENT_ID, "call_id": call_id,
                   "turn_id": index + 1, "probability": 0.95, "latency_ms": 160,
                   "text": text, "message_id": turn.user_id}, flush=False)
        return turn

    def _write_turns(self, turns: list[Turn]) -> None:
        """One socket write; the stamp is taken before it, so no reply can precede it."""
        sent = now_ns()
        for turn in turns:
            turn.sent_ns = sent
        self._flush()

    def _end_call(self, call: int) -> None:
        self.send({"event": "call.ended", "agent_id": AGENT_ID, "call_id": _call_id(call),
                   "reason": "hangup", "duration_seconds": 1.0})

    async def run_call(self, call: int, rng: random.Random) -> None:
        """Spread out: this call's turns, each a random pause after the last reply ended."""
        workload = self.workload
        await asyncio.sleep(rng.uniform(0, workload.gap))
        for index in range(workload.turns):
            turn = self._queue_turn(call, index)
            self._write_turns([turn])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(turn.done.wait(), TURN_TIMEOUT)
            if self.closed.is_set():
                return
            await asyncio.sleep(rng.expovariate(1.0 / workload.gap))
        self._end_call(call)

    async def run_bursts(self) -> None:
        """Burst: each round, every call's turn in one write; the next round once all ended."""
        workload = self.workload
        for index in range(workload.turns):
            turns = [self._queue_turn(call, index) for call in range(workload.calls)]
            self._write_turns(turns)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(turn.done.wait() for turn in turns)), TURN_TIMEOUT)
            if self.closed.is_set():
                return
            await asyncio.sleep(workload.gap)
        for call in range(workload.calls):
            self._end_call(call)

    def start_calls(self) -> None:
        for call in range(self.workload.calls):
            self.send({"event": "call.started", "agent_id": AGENT_ID,
                       "call_id": _call_id(call), "session_id": _call_id(call),
                       "from": "+15550000000", "to": "+15550000001",
                       "direction": "inbound", "transport": "phone", "metadata": {},
                       "language": "en"})


class _Refuse(asyncio.Protocol):
    """A second connection: one agent connection per run."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


def _call_id(call: int) -> str:
    return f"CA_bench_{call:04d}"


async def _loop_lag(samples: list[float], stop: asyncio.Event) -> None:
    """How late this event loop wakes (ms): if it is busy, our timestamps are late too."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + 0.01
        await asyncio.sleep(0.01)
        samples.append((loop.time() - due) * 1e3)


async def _main(workload: Workload, out: str, deadline: float) -> None:
    platform = Platform(workload)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: platform if platform.free else _Refuse(), "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        await asyncio.wait_for(platform.ready.wait(), deadline)
        cpu0, t0 = cpu_seconds(), now_ns()
        stop, lags = asyncio.Event(), []
        monitor = asyncio.create_task(_loop_lag(lags, stop))
        platform.start_calls()
        rng = random.Random(workload.seed)
        calls = [platform.run_bursts()] if workload.burst else [
            platform.run_call(call, random.Random(rng.random())) for call in range(workload.calls)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*calls), deadline)
        cpu1, t1 = cpu_seconds(), now_ns()
        stop.set()
        await monitor
        platform.send({"event": DONE, "agent_id": AGENT_ID})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(platform.closed.wait(), 10.0)
    lags.sort()
    write_json(out, {
        "turns": [turn.record() for turn in platform.turns],
        "cpu_s": cpu1 - cpu0, "wall_s": (t1 - t0) / 1e9, "strays": platform.strays,
        "frames_in": platform.frames_in, "frames_out": platform.frames_out,
        "loop_lag_p99_ms": lags[int(0.99 * len(lags))] if lags else 0.0,
        "loop_lag_max_ms": lags[-1] if lags else 0.0,
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", required=True, help="Workload as JSON")
    parser.add_argument("--out", required=True)
    parser.add_argument("--deadline", type=float, default=600.0)
    args = parser.parse_args()
    asyncio.run(_main(Workload.from_json(args.workload), args.out, args.deadline))


if __name__ == "__main__":
    main()
