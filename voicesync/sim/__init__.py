"""voicesync.sim: a local stand-in for the voice platform, speaking PROTOCOL.md from its side."""

from __future__ import annotations

from voicesync.sim._llm import LLMTurn, ScriptedLLM, ToolRequest
from voicesync.sim._record import Frame, match
from voicesync.sim.simcall import SimCall
from voicesync.sim.simulator import SimAgent, Simulator

__all__ = ["Frame", "LLMTurn", "ScriptedLLM", "SimAgent", "SimCall", "Simulator", "ToolRequest",
           "match"]
