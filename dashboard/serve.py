"""`hulk-ops dashboard` runs this: Streamlit's own `streamlit run`, then a bounded, prompt exit.

Streamlit stops its server and sessions within a few hundred ms of SIGTERM, but the process then waits
for a page script still running and finalizes every module the pages imported (pandas, plotly, numpy,
...): 1-1.5 s more on a busy 2-core machine. After Streamlit returns, this waits at most `SCRIPT_GRACE_S`
for page scripts to finish (a guarded action under way writes its audit outcome), then exits without the
interpreter teardown. Measured here: SIGTERM to exit 0.3 s with an idle session connected.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time

SCRIPT_GRACE_S = 0.8


def main(argv: list[str]) -> int:
    from streamlit.web import cli

    code = 0
    try:
        cli.main(["run", *argv], prog_name="streamlit", standalone_mode=False)
    except SystemExit as exc:  # click or Streamlit exiting on a bad option / port in use
        code = exc.code if isinstance(exc.code, int) else 1
    deadline = time.monotonic() + SCRIPT_GRACE_S
    for thread in threading.enumerate():  # Streamlit asked them to stop; idle pool workers are not waited for
        if thread.name.startswith("ScriptRunner"):
            thread.join(max(0.0, deadline - time.monotonic()))
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
