"""The examples' mode switch: the real platform with a key, else a scripted call on voicesync.sim.

::

    import voicesync
    from voicesync.local import BargeIn

    agent = voicesync.Agent("echo", greeting="Hi! Say something.")
    agent.on("turn.end", lambda turn, call: call.reply("You said " + turn.text))
    voicesync.local.run(agent, caller=["Hello there", "Tell me a story", BargeIn("Stop!")])

With ``PINECALL_API_KEY`` set, `run` connects to the platform and serves real calls until
Ctrl-C. Without it, it starts the embedded simulator, plays the `caller` lines as one call
(printing the conversation as the caller hears it, word by word), hangs up and returns,
so an example exits on its own. A provider whose key (``OPENAI_API_KEY``,
``ANTHROPIC_API_KEY``) is missing is replaced by the simulator's stand-in model: its
``*_BASE_URL`` and key variables are set for the session, so ``openai.OpenAI()``,
``anthropic.Anthropic()`` and LangChain's ``ChatOpenAI()`` reach it unchanged.

`Session` is the same switch for programs that need the client first (a Flask app).
Threads: `play` blocks the calling thread; the transcript is printed from a
``voicesync-local-narrator`` thread; scripted callees of outbound calls run on their own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from typing_extensions import Self

from voicesync._extras import needs_extra
from voicesync._narration import Narrator, Printer, StreamPrinter
from voicesync.agent import Agent
from voicesync.client import Client
from voicesync.errors import ConfigurationError

if TYPE_CHECKING:
    from voicesync.sim import SimCall, Simulator
    from voicesync.sim.model import Reply

__all__ = ["BargeIn", "Press", "Session", "Step", "needs_extra", "platform_key", "run"]

logger = logging.getLogger(__name__)

KEY_ENV = "PINECALL_API_KEY"
# provider -> (key variable, base-URL variable, the stand-in's URL attribute)
PROVIDERS = {
    "openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL", "openai_base_url"),
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "anthropic_base_url"),
}
LOCAL_KEY = "voicesync-local"  # what the client sends the simulator instead of a real key
STAND_IN_KEY = "stand-in-no-key"  # the stand-in accepts any key; the clients insist on one


@dataclass(frozen=True)
class BargeIn:
    """A caller line spoken over the bot's answer to the previous line, after `after_words`."""

    text: str
    after_words: int = 3


@dataclass(frozen=True)
class Press:
    """Keypad digits; with `reply`, wait for the bot to answer them before going on."""

    digits: str
    reply: bool = True


Step = str | BargeIn | Press | Callable[[], object]
"""A caller line, a barge-in, key presses, or any callable (run at that point of the call)."""


def platform_key() -> str | None:
    """The platform key from the environment, or None (then examples run locally)."""
    return os.environ.get(KEY_ENV) or None


class Session:
    """A connected `client`: to the platform with a key, else to a fresh local simulator.

    Args:
        local: force the mode (default: local unless ``PINECALL_API_KEY`` is set).
        model: start the stand-in model (default: when a provider key is missing). The
            environment is pointed at it only for providers whose key is missing.
        stand_in: replies the stand-in model gives, in order (strings or
            ``voicesync.sim.model.Reply``); then it echoes. Ignored with real providers.
        words_per_second: the simulated bot's speaking pace.
        out: where the conversation is printed (default: stdout).
        timeout: the longest wait for any one thing in a scripted call.

    It configures nothing of the application's: no logging set-up; the environment
    variables above are set only in local mode, and restored by `close`.
    """

    def __init__(self, *, local: bool | None = None, model: bool | None = None,
                 stand_in: Iterable[Reply | str] = (),
                 words_per_second: float = 6.0, out: TextIO | None = None,
                 timeout: float = 20.0) -> None:
        self.local = platform_key() is None if local is None else local
        self._announce = local is None  # say why it runs locally only when it chose to
        self.out = out or sys.stdout
        self.printer: Printer = StreamPrinter(self.out)
        self.timeout = timeout
        self.sim: Simulator | None = None
        self._client: Client | None = None
        self._stand_in = list(stand_in)
        self._model = model
        self._wps = words_per_second
        self._saved_env: dict[str, str | None] = {}
        self._closing = threading.Event()
        self._callees: list[threading.Thread] = []

    @property
    def client(self) -> Client:
        """The connected client (after `start()`)."""
        if self._client is None:
            raise ConfigurationError("start the session first: `with Session() as s:`")
        return self._client

    def start(self) -> Self:
        """Start the simulator (local mode) and connect the client. Blocks until connected."""
        if self._client is not None:
            return self
        try:
            if self.local:
                self._start_sim()
                assert self.sim is not None
                # Never the user's platform key: the simulator takes any key.
                self._client = Client(api_key=LOCAL_KEY, url=self.sim.url)
            else:
                self._client = Client()
            self._client.connect(self.timeout)
        except BaseException:
            self.close()
            raise
        return self

    def _start_sim(self) -> None:
        from voicesync.sim import Simulator

        missing = [name for name, (key, _, _) in PROVIDERS.items() if not os.environ.get(key)]
        want_model = bool(missing) if self._model is None else self._model
        self.sim = Simulator(words_per_second=self._wps, model=want_model).start()
        # A plain voicesync.Client() made during the session reaches the simulator too.
        self._set_env("PINECALL_URL", self.sim.url)
        if platform_key() is not None:
            self._set_env(KEY_ENV, LOCAL_KEY)
        note = f"[no {KEY_ENV}: a local simulated call"
        if self.sim.model is not None:
            self.sim.model.script(*self._stand_in)
        if missing and self.sim.model is not None:
            for name in missing:
                key, base, attr = PROVIDERS[name]
                self._set_env(key, STAND_IN_KEY)
                self._set_env(base, getattr(self.sim.model, attr))
            note += f"; no {' or '.join(PROVIDERS[n][0] for n in missing)}: a stand-in model"
        if self._announce:
            self.printer.line(note + "]")

    def _set_env(self, name: str, value: str) -> None:
        self._saved_env.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def close(self) -> None:
        """Close the client, stop the simulator, restore the environment. Idempotent."""
        self._closing.set()
        for thread in self._callees:
            thread.join(self.timeout)
        if self._client is not None:
            self._client.close()
        if self.sim is not None:
            self.sim.stop()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------ serving

    def attach(self, agent: Agent) -> Agent:
        """Register `agent`: on this session's client if it has none, else on its own client
        (which must point where this session does). Blocks until the platform acknowledges it.
        """
        own = agent.client
        if own is None:
            self.client.add_agent(agent)
        elif own is not self.client:
            if own.url != self.client.url:
                raise ConfigurationError(
                    f"agent {agent.id!r} belongs to a client for {own.url}, not {self.client.url}:"
                    " create the agent without a client, or its client inside the session")
            own.connect(self.timeout)
        agent.wait_ready(self.timeout)
        return agent

    def serve(self, agent: Agent | None = None, caller: Sequence[Step] = (), **play: Any) -> None:
        """Local: play one scripted call to `agent`. Platform: serve calls until Ctrl-C."""
        if agent is not None:
            self.attach(agent)
        if self.local:
            if agent is None:
                raise ConfigurationError("a local session needs the agent to call")
            self.play(agent, caller, **play)
            return
        agents = ", ".join(self.client.agents)
        self.printer.line(f"voicesync: serving {agents} on {self.client.url}; Ctrl-C to stop.")
        self.client.run_forever()

    def play(self, agent: Agent, caller: Sequence[Step], *, from_: str = "+15550001111",
             to: str | None = None) -> list[tuple[str, str, bool]]:
        """Call `agent` on the simulator, play `caller`, hang up; return the transcript.

        Prints the call as it is spoken. A call the agent rejects (screening) returns [].
        Raises TimeoutError when the agent does not answer within `timeout`.
        """
        with self.open_call(agent, from_=from_, to=to) as call:
            if call.status == "active":
                _drive(self._require_sim(), call, caller, self.timeout,
                       greeted=_has_greeting(agent))
        return call.transcript

    @contextlib.contextmanager
    def open_call(self, agent: Agent, *, from_: str = "+15550001111", to: str | None = None,
                  echo_caller: bool = True, printer: Printer | None = None) -> Iterator[SimCall]:
        """Ring `agent` on the simulator and yield the call once answered (or rejected: see
        its ``status``), printing it as it is spoken (to `printer`, default the session's
        output); hang up and finish printing on exit.
        """
        sim = self._require_sim()
        self.attach(agent)
        _wait_phones(sim, agent, self.timeout)
        since = sim.mark()
        call = sim.ring(agent.id, from_, to, timeout=self.timeout)
        narrator = Narrator(printer or self.printer, sim, call.call_id, since, live=True,
                            echo_caller=echo_caller)
        try:
            call.wait_started(self.timeout + sim.ring_timeout)
            yield call
        finally:
            narrator.finish(call, self.timeout)

    def pick_up(self, to: str, caller: Sequence[Step]) -> None:
        """Local only: when the agent dials `to`, a scripted callee answers with `caller`.

        The callee waits for the bot to speak first, plays its lines and hangs up; the
        call is printed line by line, labelled with the number. A no-op on the platform.
        """
        if not self.local:
            return
        sim = self._require_sim()
        since = sim.mark()
        thread = threading.Thread(target=self._callee, args=(sim, to, list(caller), since),
                                  name=f"voicesync-local-callee-{to}", daemon=True)
        self._callees.append(thread)
        thread.start()

    def _callee(self, sim: Simulator, to: str, caller: list[Step], since: int) -> None:
        while not self._closing.is_set():
            try:
                call = sim.wait_call(to=to, direction="outbound", timeout=0.25)
            except TimeoutError:
                continue
            narrator = Narrator(self.printer, sim, call.call_id, since, live=False, label=to)
            try:
                _drive(sim, call, caller, self.timeout, greeted=True)
            except (TimeoutError, RuntimeError) as exc:
                logger.warning("scripted callee %s: %s", to, exc)
            finally:
                narrator.finish(call, self.timeout)
            return

    def _require_sim(self) -> Simulator:
        if self.sim is None:
            raise ConfigurationError("scripted calls need a local session (no PINECALL_API_KEY)")
        return self.sim



def run(agent: Agent, caller: Sequence[Step] = (), **session: Any) -> None:
    """Serve `agent`: on the platform until Ctrl-C with a key, else one scripted call.

    `session` keywords go to `Session` (``stand_in=``, ``words_per_second=``...). This is
    an example's entry point, so, if the program configured no logging, it sends WARNING
    and above to stderr (a `Session` alone never touches logging).
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with Session(**session) as s:
        s.serve(agent, caller)


# ---------------------------------------------------------------------- the scripted caller


def _has_greeting(agent: Agent) -> bool:
    return bool(agent.config.get("greeting")) or callable(type(agent).greeting)


def _wait_phones(sim: Simulator, agent: Agent, timeout: float) -> None:
    """The agent is acknowledged before the simulator has read its `channel.add` frames."""
    phones = {ref for ref in agent.channels if ref.startswith(("+", "sip:"))}
    deadline = time.monotonic() + timeout
    while True:
        since = sim.mark()
        if phones <= set(sim.wait_agent(agent.id, timeout).channels):
            return
        sim.wait_frame(event="channel.added", since=since,
                       timeout=max(0.0, deadline - time.monotonic()))


def _drive(sim: Simulator, call: SimCall, steps: Sequence[Step], timeout: float, *,
           greeted: bool) -> None:
    """Play `steps` on `call`, letting the bot finish answering each line (unless barged)."""
    try:
        if greeted:
            _settle(call, timeout)
        for index, step in enumerate(steps):
            if call.status != "active":
                return  # the agent hung up
            barge_next = index + 1 < len(steps) and isinstance(steps[index + 1], BargeIn)
            if isinstance(step, BargeIn):
                _barge(call, step, timeout)
            elif isinstance(step, Press):
                _press(sim, call, step, timeout)
                continue
            elif isinstance(step, str):
                call.say(step, timeout=timeout)
            else:
                step()
                continue
            if not barge_next:
                _settle(call, timeout)
    except RuntimeError:
        if call.status == "active":
            raise  # else: the agent hung up while the caller waited


def _settle(call: SimCall, timeout: float) -> None:
    call.wait_reply(timeout)
    call.wait_idle(timeout)


def _barge(call: SimCall, step: BargeIn, timeout: float) -> None:
    try:
        call.barge_in(step.text, after_words=step.after_words, timeout=timeout)
    except TimeoutError:
        raise TimeoutError(
            f"nothing to barge in on: the bot did not say {step.after_words} words of a reply "
            f"within {timeout:g} s (a BargeIn needs the line before it to get a long answer)"
        ) from None


def _press(sim: Simulator, call: SimCall, step: Press, timeout: float) -> None:
    since = sim.mark()
    call.press(step.digits)
    if step.reply:  # nothing is playing now, so the next message to end is the answer
        sim.wait_frame(lambda f: f.event in ("bot.finished", "bot.interrupted"), timeout,
                       since=since, direction="out", call_id=call.call_id)
        call.wait_idle(timeout)
