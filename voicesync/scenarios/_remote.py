"""`python -m voicesync call`: play the caller on a running simulator, through its control API.

Standard library only (and no `voicesync.sim`): the same HTTP/JSON any other language
would use. `RemoteSim` is the tiny client; `main` is the command line.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8766"


class RemoteError(Exception):
    """The control API answered with an error status; `status` is the HTTP code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class RemoteSim:
    """A client for a simulator's control API. Any thread; each method is one request."""

    def __init__(self, url: str = DEFAULT_URL, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as answer:
                return json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = json.loads(exc.read() or b"{}").get("error", exc.reason)
            raise RemoteError(exc.code, str(detail)) from None

    def start_call(self, agent: str | None = None, *, from_: str = "+15550001111",
                   to: str | None = None) -> Any:
        return self.request("POST", "/v1/calls", {"agent": agent, "from": from_, "to": to})

    def act(self, call_id: str, action: str, **body: Any) -> Any:
        """POST /v1/calls/<id>/<action> (say, barge_in, press, hangup, wait)."""
        return self.request("POST", f"/v1/calls/{call_id}/{action}", body)

    def call(self, call_id: str) -> Any:
        return self.request("GET", f"/v1/calls/{call_id}")

    def frames(self, call_id: str, since: int = 0) -> Any:
        return self.request("GET", f"/v1/calls/{call_id}/frames?since={since}")


class _Ordered(argparse.Action):
    """Keeps --say/--press/--barge-in in the order given."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        steps = getattr(namespace, "steps", None) or []
        steps.append((self.dest, values))
        namespace.steps = steps


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="voicesync call",
        description="call an agent on a running `voicesync sim` and play the caller")
    parser.add_argument("agent", nargs="?", help="the agent id (or use --to NUMBER)")
    parser.add_argument("--url", default=DEFAULT_URL,
                        help=f"the simulator's control API (default {DEFAULT_URL})")
    parser.add_argument("--to", help="call this number instead of naming the agent")
    parser.add_argument("--from", dest="from_", default="+15550001111", help="caller id")
    parser.add_argument("--say", action=_Ordered, help="a caller line (repeatable)")
    parser.add_argument("--barge-in", action=_Ordered,
                        help="a line spoken over the bot's answer to the --say before it, "
                             "after its third word")
    parser.add_argument("--press", action=_Ordered, help="keypad digits")
    parser.add_argument("--keep", action="store_true", help="do not hang up at the end")
    parser.add_argument("--json", action="store_true", help="print the final call as JSON")
    args = parser.parse_args(argv)
    if not args.agent and not args.to:
        parser.error("name the agent, or give --to NUMBER")
    sim = RemoteSim(args.url)
    try:
        call = sim.start_call(args.agent, from_=args.from_, to=args.to)
        shown = _show(call, 0, args.json)
        steps = getattr(args, "steps", None) or []
        for index, (kind, value) in enumerate(steps):
            if call["status"] != "active" or kind == "barge_in":
                continue  # a barge-in rides on the line before it
            after = steps[index + 1] if index + 1 < len(steps) else ("", "")
            if kind == "say" and after[0] == "barge_in":
                call = sim.act(call["call_id"], "say", text=value,
                               barge_in={"text": after[1], "after_words": 3})
            elif kind == "say":
                call = sim.act(call["call_id"], "say", text=value)
            else:
                call = _press(sim, call["call_id"], value)
            shown = _show(call, shown, args.json)
        if not args.keep and call["status"] == "active":
            call = sim.act(call["call_id"], "hangup")
    except (RemoteError, OSError) as exc:
        _err(f"voicesync call: {exc}")
        return 1
    if args.json:
        _out(json.dumps(call, indent=2))
    else:
        _out(f"[call {call['call_id']} {call['status']}: {call['ended_reason'] or ''}]")
    return 0


def console(url: str, agent: str, *, from_: str = "+15550001111", to: str | None = None,
            lines: Iterable[str] | None = None) -> int:
    """`voicesync console --url`: be the caller of an agent registered on a running
    simulator, typing lines (``/press 12``, ``/hangup``); each answer prints once spoken."""
    sim = RemoteSim(url)
    try:
        call = sim.start_call(agent, from_=from_, to=to)
        shown = _show(call, 0, False)
        for raw in sys.stdin if lines is None else lines:
            text, cid = raw.strip(), call["call_id"]
            if call["status"] != "active" or text == "/hangup":
                break
            if text.startswith("/press"):
                call = _press(sim, cid, text.removeprefix("/press").strip())
            elif text:
                call = sim.act(cid, "say", text=text)
            shown = _show(call, shown, False)
        if call["status"] == "active":
            call = sim.act(call["call_id"], "hangup")
    except (RemoteError, OSError) as exc:
        _err(f"voicesync console: {exc}")
        return 1
    _out(f"[call {call['call_id']} {call['status']}: {call['ended_reason'] or ''}]")
    return 0


def _press(sim: RemoteSim, call_id: str, digits: str) -> Any:
    """Press keys and wait (a few seconds) for the bot's answer, if it gives one."""
    try:
        return sim.act(call_id, "press", digits=digits, wait=True, timeout=5)
    except RemoteError as exc:
        if exc.status != 504:  # 504: the agent did not answer the keys
            raise
        return sim.call(call_id)


def _show(call: dict[str, Any], shown: int, quiet: bool) -> int:
    lines = call["transcript"]
    if not quiet:
        for line in lines[shown:]:
            who = "caller" if line["speaker"] == "user" else "bot"
            _out(f"{who}: {line['text']}" + (" [cut]" if line["interrupted"] else ""))
    return len(lines)


def _out(text: str) -> None:  # the command lines' output (library code never print()s)
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
