"""The `python -m voicesync` / `voicesync` command line: a table of subcommands, loaded lazily."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from voicesync.errors import MissingDependencyError

# name -> ("module:function", one-line help). Each function takes the remaining argv and
# returns an exit code; its module is imported only when the subcommand runs.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "sim": ("voicesync.__main__:sim_main", "run the local platform simulator in the foreground"),
    "demo": ("voicesync.demo:main", "run a scripted call against the simulator"),
    "console": ("voicesync.console:main", "talk to an agent from the terminal"),
    "test": ("voicesync.scenarios._cli:main", "run scenario files (YAML) against your agents"),
    "call": ("voicesync.scenarios._remote:main", "play the caller on a running simulator"),
}


def _load(target: str) -> Callable[[Sequence[str]], int] | None:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            return None
        raise
    fn: Callable[[Sequence[str]], int] | None = getattr(module, attr, None)
    return fn


def sim_main(argv: Sequence[str]) -> int:
    """`voicesync sim`: serve the simulator until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="voicesync sim", description=SUBCOMMANDS["sim"][1])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any)")
    parser.add_argument("--words-per-second", type=float, default=2.5,
                        help="bot speech pace (default 2.5)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="real seconds per simulated second for limits (default 1)")
    parser.add_argument("--api-key", default=None, help="require this API key (default: any)")
    parser.add_argument("--virtual-time", action="store_true",
                        help="speak without waiting: the clock jumps over bot speech")
    parser.add_argument("--control-port", type=int, default=8766,
                        help="control API port (default 8766; 0 = any; -1 = off)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every frame")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from voicesync.sim import Simulator  # MissingDependencyError: main() prints it

    sim = Simulator(args.host, args.port, words_per_second=args.words_per_second,
                    time_scale=args.time_scale, api_key=args.api_key,
                    virtual_time=args.virtual_time)
    try:
        sim.start()
    except OSError as exc:
        print(f"voicesync sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    control = _start_control(sim, args.host, args.control_port)
    try:  # Ctrl-C may come as soon as the first line is out
        print(f"voicesync simulator on {sim.url} (REST {sim.http_url}); Ctrl-C to stop",
              flush=True)
        if control is not None:
            print(f"control API on {control.url} (see docs/testing.md)", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        print("stopping", flush=True)
    finally:
        if control is not None:
            control.stop()
        sim.stop()
    return 0


def _start_control(sim: Any, host: str, port: int) -> Any:
    """The control API (voicesync.sim._control) next to the simulator, unless port < 0."""
    if port < 0:
        return None
    from voicesync.sim._control import ControlServer

    try:
        control = ControlServer(sim, host, port).start()
    except OSError as exc:  # e.g. a second simulator on the default port: serve without it
        print(f"voicesync sim: no control API, cannot listen on {host}:{port}: {exc}",
              file=sys.stderr)
        return None
    return control


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print("usage: voicesync <command> [options]\n\ncommands:")
        for name, (_, help_text) in SUBCOMMANDS.items():
            print(f"  {name:<10}{help_text}")
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f"voicesync: unknown command {name!r} (try: {', '.join(SUBCOMMANDS)})",
              file=sys.stderr)
        return 2
    try:
        fn = _load(SUBCOMMANDS[name][0])
        if fn is None:
            print(f"voicesync {name}: not available in this build yet", file=sys.stderr)
            return 2
        return fn(rest)
    except MissingDependencyError as exc:  # the one message: which extra to install
        print(f"voicesync {name}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
