"""voicesync.sim: a local stand-in for the voice platform, speaking docs/protocol.md from its side.

```python
from voicesync.sim import Simulator
with Simulator(port=0, words_per_second=2.5) as sim:
    sim.wait_agent("support", timeout=5)
    call = sim.start_call("support")
    call.say("what time is it")
    text = call.wait_reply(timeout=10)
```

Choices where the platform's behaviour is not known (docs/protocol.md §9):

- Bad key: `error INVALID_KEY` then close 1008. `handshake = "silent"` never answers.
- A reply is accepted when `in_reply_to` is "" or the current user message id; anything
  else gets `reply.rejected` (message_obsolete) and is never spoken.
- Streams start at the first `.`/`!`/`?` followed by whitespace or the end of the text
  so far, or at `end`; a word is spoken once whitespace follows it (or at `end`).
- An empty message (no words) gets only `bot.finished {duration_ms: 0}`.
- Word pacing: word 0 right after `bot.speaking`, then one every 1/words_per_second s;
  `start_time`/`end_time` are seconds from the message start; `message.confirmed` comes
  just before `bot.finished`, whose `duration_ms` is words x pace.
- Barge-in: `speech.started` (new turn n+1) -> `bot.interrupted {user_spoke}` ->
  `turn.continued {turn_id: n+1}` -> `message.confirmed {text: the words actually
  spoken}` (sent even when empty) -> the rest of the turn. Queued messages are dropped
  silently; an open stream of a dropped message ignores its later chunks and `end`.
- Continuation: `speech.started` -> (`bot.interrupted {continuation}` ->)
  `turn.continued {turn_id: n}` (-> `message.confirmed`) -> a new `user.message` with
  the joined text and the same turn id; queued replies to the old message are dropped.
  In the transcript the joined text replaces the first part, after the cut-off reply.
- `bot.cancel` / `bot.clear`: `bot.interrupted {cancelled}` for the playing message
  (then `message.confirmed`) and for every dropped queued one (`words_spoken: 0`).
- `call.hangup` -> reason "hangup" (or the frame's `reason`); `call.forward` ->
  `call.forwarded` then reason "forwarded"; a closed socket ends its calls as
  "disconnected" (that frame cannot reach it); `Simulator.drop()` does so at once. A
  message playing when its call ends is recorded in the transcript as cut off.
- Server LLM: budgets 150 ms / 1.5 s / `timeout_ms` (max 5 s) on the scaled clock;
  tool results are awaited `tool_timeout` (30 simulated s), then an apology is spoken.
- `time_scale` scales every platform timer (limits, ring, dial, budgets) and the
  reported `duration_seconds`; word pacing stays in real seconds.
- History requests for an unknown call are answered with an `error` ack.
- Chat and WhatsApp sessions (`start_chat`, `start_whatsapp`, or `llm.chat` from any
  socket) are text: no speech frames; an answer is delivered whole when complete
  (`chat.response` + `llm.chat.done`, or `whatsapp.response`), a server model's tokens
  first as `llm.chat.chunk`. A client's `bot.reply`/`bot.reply.stream` on a session id
  is its answer. A chat user's socket closing ends the session as "user_left"; the
  agent's closing sends the user `llm.chat.error`. A whole `bot.reply` reaches the user
  as one `llm.chat.token`. `adopt_webrtc` starts a WebRTC call without `call.started`.
- REST on the same port: token minting (`scope` observe/participate/supervise; `call_id`
  must be a call of the token's agents; several comma-separated agents only for `stream`),
  voices, phone numbers and a fixed balance. Knowledge bases live on the management API,
  a separate host: `KnowledgeServer`.
"""

from __future__ import annotations

from voicesync._extras import needs_extra

with needs_extra("voicesync.sim"):  # websockets is the `sim` extra: say so, not a bare traceback
    from voicesync.sim._chat import SimChat
    from voicesync.sim._knowledge import KnowledgeServer
    from voicesync.sim._llm import LLMTurn, ScriptedLLM, ToolRequest
    from voicesync.sim._record import Frame, match
    from voicesync.sim.simcall import SimCall
    from voicesync.sim.simulator import SimAgent, Simulator

__all__ = ["Frame", "KnowledgeServer", "LLMTurn", "ScriptedLLM", "SimAgent", "SimCall",
           "SimChat", "Simulator", "ToolRequest", "match"]
