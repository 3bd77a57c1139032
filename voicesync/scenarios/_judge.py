"""Rubric checks ("the agent confirmed the booking date") on what the caller heard.

With ``OPENAI_API_KEY`` or ``ANTHROPIC_API_KEY`` set (and ``VOICESYNC_JUDGE`` not
``stand-in``), a real model judges; otherwise a deterministic stand-in does, so CI never
needs a key. The stand-in passes a rubric when every word it quotes ('Friday', "19:30")
was said by the bot, or, with nothing quoted, when most of its content words were. Reports say
which judge ran.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

STOP = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "for", "from", "has",
    "have", "in", "is", "it", "its", "of", "on", "or", "that", "the", "their", "this", "to",
    "was", "were", "will", "with", "agent", "bot", "caller", "user", "said", "says"})

PROMPT = ("You grade a phone call transcript against one rubric line. Answer with JSON "
          '{"pass": true|false, "why": "<one sentence>"} and nothing else.')


@dataclass(frozen=True)
class Verdict:
    rubric: str
    passed: bool
    why: str


def judge_name() -> str:
    """Which judge `judge()` uses now: "openai:<model>", "anthropic:<model>" or "stand-in"."""
    if os.environ.get("VOICESYNC_JUDGE", "") == "stand-in":
        return "stand-in"
    if os.environ.get("OPENAI_API_KEY"):
        return "openai:" + os.environ.get("VOICESYNC_JUDGE_MODEL", "gpt-4o-mini")
    if os.environ.get("ANTHROPIC_API_KEY"):
        return "anthropic:" + os.environ.get("VOICESYNC_JUDGE_MODEL", "claude-3-5-haiku-latest")
    return "stand-in"


def judge(rubric: str, transcript: str) -> Verdict:
    """One rubric line against the transcript ("caller: ...\\nbot: ..." lines)."""
    name = judge_name()
    if name == "stand-in":
        return stand_in(rubric, transcript)
    provider, _, model = name.partition(":")
    question = f"Rubric: {rubric}\n\nTranscript:\n{transcript}"
    if provider == "openai":
        import openai

        answer = openai.OpenAI().chat.completions.create(
            model=model, messages=[{"role": "system", "content": PROMPT},
                                   {"role": "user", "content": question}])
        text = answer.choices[0].message.content or ""
    else:
        import anthropic

        reply = anthropic.Anthropic().messages.create(
            model=model, max_tokens=200, system=PROMPT,
            messages=[{"role": "user", "content": question}])
        text = "".join(getattr(block, "text", "") for block in reply.content)
    try:
        parsed = json.loads(text[text.index("{"): text.rindex("}") + 1])
        return Verdict(rubric, bool(parsed.get("pass")), str(parsed.get("why", "")))
    except ValueError:
        return Verdict(rubric, False, f"the judge's answer was not JSON: {text[:200]!r}")


def stand_in(rubric: str, transcript: str) -> Verdict:
    """The deterministic judge: only what the bot said counts."""
    heard = _words(" ".join(line for line in transcript.splitlines() if line.startswith("bot:")))
    quoted = re.findall(r"'([^']+)'|\"([^\"]+)\"", rubric)
    wanted = [a or b for a, b in quoted]
    if wanted:
        missing = [w for w in wanted if not set(_words(w)) <= set(heard)]
        if missing:
            return Verdict(rubric, False, f"never heard {missing}")
        return Verdict(rubric, True, f"heard {wanted}")
    content = [w for w in _words(rubric) if w not in STOP and len(w) > 2]
    found = [w for w in content if any(h.startswith(w[:5]) for h in heard)]
    passed = bool(content) and len(found) * 2 >= len(content)
    return Verdict(rubric, passed, f"heard {len(found)} of the rubric's words {content}")


def _words(text: str) -> list[str]:
    return re.findall(r"[\w:#+']+", text.lower())
