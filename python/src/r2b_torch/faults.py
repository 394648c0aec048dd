"""Fault injection and tracing for the crash tests, inert unless their variables are set (in use they never
are, and every call is one dictionary lookup).

`R2B_FAULT=<point>:<stage>:<n>` makes the engine SIGKILL itself at one named point, so a test can reproduce
each crash window of the run-folder protocol exactly. Points: `after-step` (n: the step index; its log line is
written), `before-checkpoint-rename` (n: epochs completed; the `e<n>.<hex>.tmp` folder is complete),
`after-checkpoint-rename` (the `e<n>` folder is in place, its log line not yet written). In a torchrun job
only the process of rank `R2B_FAULT_RANK` (default 0) acts on it.

`R2B_REQUEST_STOP=<stage>:<step>`: the writer requests a stop (the stop-request file, as a user would) once
that step's line is written, so a test knows at which boundary the run stops. `R2B_REQUEST_PAUSE=<stage>:<step>`
does the same with a pause request (the run then holds there until the request is withdrawn).

`R2B_TRACE_DIR=<dir>`: every process writes its pid to `<dir>/rank-<r>.pid` when training starts and appends
`<stage> <step>` to `<dir>/rank-<r>.steps` after each step it takes (what a test compares across processes).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


def _parse(value: str | None) -> tuple[str, str, int] | None:
    if not value:
        return None
    point, stage, n = value.rsplit(":", 2)
    return point, stage, int(n)


def _rank() -> int:
    return int(os.environ.get("RANK") or 0)


_FAULT = _parse(os.environ.get("R2B_FAULT"))
_FAULT_RANK = int(os.environ.get("R2B_FAULT_RANK") or 0)
_STOP = _parse(f"stop:{os.environ['R2B_REQUEST_STOP']}") if os.environ.get("R2B_REQUEST_STOP") else None
_PAUSE = _parse(f"pause:{os.environ['R2B_REQUEST_PAUSE']}") if os.environ.get("R2B_REQUEST_PAUSE") else None
_TRACE = Path(os.environ["R2B_TRACE_DIR"]) if os.environ.get("R2B_TRACE_DIR") else None


def fault_point(point: str, stage: str, n: int) -> None:
    if _FAULT is not None and _FAULT == (point, stage, n) and _rank() == _FAULT_RANK:
        os.kill(os.getpid(), signal.SIGKILL)


def stop_requested_at(stage: str, step: int) -> bool:
    """Whether R2B_REQUEST_STOP names this step."""
    return _STOP is not None and _STOP == ("stop", stage, step)


def pause_requested_at(stage: str, step: int) -> bool:
    """Whether R2B_REQUEST_PAUSE names this step."""
    return _PAUSE is not None and _PAUSE == ("pause", stage, step)


def trace_start() -> None:
    if _TRACE is not None:
        _TRACE.mkdir(parents=True, exist_ok=True)
        (_TRACE / f"rank-{_rank()}.pid").write_text(f"{os.getpid()}\n")


def trace_step(stage: str, step: int) -> None:
    if _TRACE is not None:
        with open(_TRACE / f"rank-{_rank()}.steps", "a") as f:
            f.write(f"{stage} {step}\n")
