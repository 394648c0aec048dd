"""Fault injection for the crash tests: `R2B_FAULT=<point>:<stage>:<n>` makes the engine SIGKILL itself at one
named point, so a test can reproduce each crash window of the run-folder protocol exactly. Unset (always, in
use), every call is one dictionary lookup.

Points: `after-step` (n: the step index; its log line is written), `before-checkpoint-rename` (n: epochs
completed; the `e<n>.<hex>.tmp` folder is complete), `after-checkpoint-rename` (the `e<n>` folder is in place,
its log line not yet written).
"""

from __future__ import annotations

import os
import signal


def _parse(value: str | None) -> tuple[str, str, int] | None:
    if not value:
        return None
    point, stage, n = value.rsplit(":", 2)
    return point, stage, int(n)


_FAULT = _parse(os.environ.get("R2B_FAULT"))


def fault_point(point: str, stage: str, n: int) -> None:
    if _FAULT is not None and _FAULT == (point, stage, n):
        os.kill(os.getpid(), signal.SIGKILL)
