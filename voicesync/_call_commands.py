"""The `Call` commands that only build a frame and send it (docs/protocol.md §7.2), and
the history requests that wait for the platform's answer (§7.3).

`CallCommands` is mixed into `Call`, which owns the sending (`send`, `_request`): a
command on an ended call is dropped and reported with False; a request raises
CallEndedError. Every method may be called from any thread.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicesync import _codec
from voicesync.errors import ConfigurationError

REQUEST_TIMEOUT = 10.0


class CallCommands:
    """One-frame call commands and history requests; mixed into `Call`."""

    id: str

    if TYPE_CHECKING:
        def send(self, frame: Mapping[str, Any]) -> bool: ...
        def _request(self, event: str, response: str, timeout: float,
                     **payload: Any) -> Any: ...

    # ------------------------------------------------------------------ call control

    def hangup(self, reason: str | None = None) -> bool:
        """End the call; a `reason` (for calls on a phone line) is kept in the call log."""
        return self.send(_codec.command("call.hangup", call_id=self.id, reason=reason))

    def forward(self, to: str, *, message: str = "", announce: bool = False) -> bool:
        """Transfer the call to `to` (a phone number or SIP URI)."""
        return self.send({"event": "call.forward", "call_id": self.id, "to": to,
                          "message": message, "announce": announce})

    def send_dtmf(self, digits: str) -> bool:
        """Play keypad tones (0-9, *, #) down the line."""
        return self.send(_codec.command("call.dtmf", call_id=self.id, digits=digits))

    def hold(self) -> bool:
        return self.send(_codec.command("call.hold", call_id=self.id))

    def unhold(self) -> bool:
        return self.send(_codec.command("call.unhold", call_id=self.id))

    def mute(self) -> bool:
        return self.send(_codec.command("call.mute", call_id=self.id))

    def unmute(self) -> bool:
        return self.send(_codec.command("call.unmute", call_id=self.id))

    def update(self, **options: Any) -> bool:
        """Change this call's session settings (sent verbatim as ``session.configure``)."""
        return self.send(_codec.session_configure(self.id, None, options))

    def load_skill(self, name: str) -> bool:
        return self.send(_codec.command("skill.load", call_id=self.id, skill=name))

    def unload_skill(self, name: str) -> bool:
        return self.send(_codec.command("skill.unload", call_id=self.id, skill=name))

    def tool_result(self, msg_id: str, results: Iterable[Mapping[str, Any]]) -> bool:
        """Answer one `llm.tool_call` round: ``[{"tool_call_id", "result", "ephemeral"?,
        "no_followup"?}]`` in the order the tools were asked for."""
        return self.send({"event": "llm.tool_result", "call_id": self.id, "msg_id": msg_id,
                          "results": _codec.tool_results(results)})

    # ------------------------------------------------------------------ history requests

    def get_history(self, *, timeout: float = REQUEST_TIMEOUT) -> list[dict[str, Any]]:
        """The server-side LLM's messages for this call. Blocks up to `timeout`."""
        reply = self._request("history.get", "history.data", timeout)
        messages = reply.get("messages")
        return list(messages) if isinstance(messages, list) else []

    def _count(self, event: str, timeout: float, **payload: Any) -> int:
        count = self._request(event, "history.updated", timeout, **payload).get("count")
        return count if isinstance(count, int) else 0

    def set_history(self, messages: Iterable[Mapping[str, Any]], *,
                    timeout: float = REQUEST_TIMEOUT) -> int:
        """Replace the server-side history; returns the resulting message count."""
        return self._count("history.set", timeout, messages=[dict(m) for m in messages])

    def add_history(self, messages: Iterable[Mapping[str, Any]], *,
                    timeout: float = REQUEST_TIMEOUT) -> int:
        return self._count("history.add", timeout, messages=[dict(m) for m in messages])

    def clear_history(self, *, timeout: float = REQUEST_TIMEOUT) -> int:
        return self._count("history.clear", timeout)

    def add_context(self, text: str, *, timeout: float = REQUEST_TIMEOUT) -> int:
        return self._count("history.add_context", timeout, text=text)

    def set_prompt(self, prompt: str, *, timeout: float = REQUEST_TIMEOUT) -> int:
        return self._count("history.set_instructions", timeout, prompt=prompt)

    def set_prompt_file(self, path: str | os.PathLike[str], *,
                        prompts_dir: str | os.PathLike[str] = "prompts",
                        timeout: float = REQUEST_TIMEOUT) -> int:
        """`set_prompt` with the text of a file: `path` relative to `prompts_dir` (itself
        relative to the working directory), or absolute; read as UTF-8 and stripped of
        surrounding whitespace, as the TypeScript SDK does. The file is read on the calling
        thread. Raises ConfigurationError naming the path when it cannot be read."""
        resolved = (Path(prompts_dir) / path).resolve()
        try:
            prompt = resolved.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(
                f"cannot read the prompt file {str(resolved)!r} ({exc.__class__.__name__}): "
                f"a relative path is read from prompts_dir={str(prompts_dir)!r}, itself "
                f"relative to the working directory {os.getcwd()!r}") from exc
        return self.set_prompt(prompt, timeout=timeout)

    def set_prompt_vars(self, values: Mapping[str, str], *,
                        timeout: float = REQUEST_TIMEOUT) -> int:
        return self._count("history.set_vars", timeout, vars=dict(values))
