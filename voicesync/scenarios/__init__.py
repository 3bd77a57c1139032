"""Conversation tests for a voice agent: scripted callers, barge-ins, budgets, no keys.

```python
from voicesync.scenarios import Scenario

def test_echo_stops_when_interrupted():
    (Scenario(Echo)
        .say("Tell me a story")
        .barge_in("Stop!", after_words=3)
        .hear("You said: Stop")
        .expecting(first_word_ms=200)
        .run().check())
```

Each run gets its own simulator on a virtual clock (speech costs no time; timings are
the agent's own latency), its own client and a fresh agent. The same scenarios live in
YAML files run by ``python -m voicesync test PATH`` or collected by pytest
(``*.scenario.yaml``). See docs/testing.md.
"""

from __future__ import annotations

from voicesync.scenarios._caller import Context
from voicesync.scenarios._files import find, load
from voicesync.scenarios._jsonl import read_recording, write_jsonl
from voicesync.scenarios._judge import Verdict, judge, judge_name
from voicesync.scenarios._measure import Spoken, Timing
from voicesync.scenarios._replay import Divergence, Replay, replay
from voicesync.scenarios._run import Result, ScenarioFailed, run
from voicesync.scenarios._spec import Scenario
from voicesync.scenarios._steps import (
    BargeIn,
    Do,
    Expect,
    Hangup,
    Hear,
    Press,
    Say,
    Silence,
    WaitEnd,
)

__all__ = ["BargeIn", "Context", "Divergence", "Do", "Expect", "Hangup", "Hear", "Press",
           "Replay", "Result", "Say", "Scenario", "ScenarioFailed", "Silence", "Spoken", "Timing",
           "Verdict", "WaitEnd", "find", "judge", "judge_name", "load", "read_recording",
           "replay", "run", "write_jsonl"]
