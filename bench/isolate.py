"""Call a benchmark module's `run(**kwargs)` in a fresh Python process and get its dict back (no text parsing).

`python -m bench` uses it for bench.pages and bench.browser, which change the process they run in and
measure what a fresh dashboard process costs (see bench/__main__.py). The child is started with
multiprocessing's "spawn" (a new interpreter: nothing imported, cached or set by the benchmarks that ran
before is inherited, unlike fork), its figures come back pickled through a pipe. What the child prints
(the module's progress table) goes to stderr, so the parent's stdout carries only its own report.

This lives apart from bench/__main__.py because a spawned child cannot find functions of a `__main__`
module run with `python -m`: the target must be importable by name.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import signal
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any

STOP_GRACE_S = 60.0  # after SIGINT, time for the child's cleanup (its Redis keys, the servers it started)


def call_in_fresh_process(module: str, kwargs: dict[str, Any], timeout: float) -> dict[str, Any]:
    """`module.run(**kwargs)` in a spawned child; its return value, or RuntimeError/TimeoutError.

    On timeout the child gets SIGINT (KeyboardInterrupt: its `finally` blocks stop what it started and delete
    its keys), then SIGKILL if it has not exited within STOP_GRACE_S."""
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(module, kwargs, sender), name=f"bench {module}")
    child.start()
    sender.close()  # the child holds the only writer: EOF on the receiver if it dies without an answer
    try:
        if not receiver.poll(timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGINT)
            raise TimeoutError(f"{module}.run did not finish within {timeout:.0f} s")
        try:
            status, value = receiver.recv()
        except EOFError:
            child.join(5)
            raise RuntimeError(f"{module}.run's process exited with code {child.exitcode} and no result") from None
    finally:
        receiver.close()
        child.join(STOP_GRACE_S)
        if child.is_alive():
            child.kill()
            child.join(5)
    if status != "ok":
        raise RuntimeError(f"{module}.run raised {value}")
    return value


def _child(module: str, kwargs: dict[str, Any], sender: Connection) -> None:
    # A shell runs background jobs with SIGINT ignored and a spawned child inherits that; restore Python's
    # handler so the parent's SIGINT becomes KeyboardInterrupt here and the benchmark's cleanup runs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            answer: tuple[str, Any] = ("ok", importlib.import_module(module).run(**kwargs))
    except BaseException as exc:  # SystemExit / KeyboardInterrupt too: the parent gets the reason, not an EOF
        traceback.print_exc()
        answer = ("error", f"{type(exc).__name__}: {exc}"[:1000])
    try:
        sender.send(answer)
    except Exception as exc:  # a result that does not pickle; a parent that is gone
        with contextlib.suppress(OSError):
            sender.send(("error", f"cannot send the result: {type(exc).__name__}: {exc}"))
    finally:
        sender.close()
