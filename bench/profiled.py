"""`hulk-ops collect` under cProfile on the CPU clock, switched by signals (used by `bench.probe --profile`).

    python bench/profiled.py OUT.prof collect --config ...

SIGUSR1 starts profiling the main thread (the event loop), SIGUSR2 stops it and writes OUT.prof, so the
profile covers exactly the measured window. Run as a script path (not `-m bench.profiled`) so that it also
profiles another checkout's collector (`HULK_BENCH_COLLECTOR_SRC`: that checkout comes first on the path).
"""

from __future__ import annotations

import cProfile
import signal
import sys
import time
from types import FrameType


def main() -> None:
    out, argv = sys.argv[1], sys.argv[2:]
    sys.path.pop(0)  # this script's directory: the collector imports `hulk_ops` from the working directory
    profiler = cProfile.Profile(time.process_time)

    def start(_sig: int, _frame: FrameType | None) -> None:
        profiler.enable()

    def stop(_sig: int, _frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(out)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    sys.path.insert(0, "")
    from hulk_ops.entrypoints.cli import main as hulk_ops

    raise SystemExit(hulk_ops(argv))


if __name__ == "__main__":
    main()
