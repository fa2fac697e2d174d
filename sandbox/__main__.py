"""`python -m sandbox [WORLD] [--port N] [--latency-ms X] [--as-written]`: run the sandbox standalone until
interrupted. The world is rebased to the wall clock (it reads "as of now"); `--as-written` keeps its dates."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from sandbox.server import Sandbox
from sandbox.world import WorldError, load_world


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("world", nargs="?", help="world YAML file (default: the bundled sample tenant)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every request")
    parser.add_argument(
        "--as-written",
        action="store_true",
        help="keep the world's own dates (default: move every time by wall clock minus the world's now)",
    )
    args = parser.parse_args(argv)
    try:
        world = load_world(args.world, rebase_to=None if args.as_written else "now")
    except (OSError, WorldError) as exc:
        print(f"sandbox: cannot load the world: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(Sandbox(world, latency_ms=args.latency_ms, port=args.port)))
    return 0


async def _serve(sandbox: Sandbox) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with sandbox:
        print("\n".join(sandbox.export_lines()), flush=True)
        print(f"# sandbox serving {sandbox.url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        await stop.wait()


if __name__ == "__main__":
    sys.exit(main())
