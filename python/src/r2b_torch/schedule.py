"""Learning-rate schedules as pure functions of the (fractional) epoch (engine/schedule.ts)."""

from __future__ import annotations

import math

from .config import ScheduleSpec


def schedule_multiplier(spec: ScheduleSpec, epoch: float, total_epochs: float) -> float:
    """The multiplier on the base learning rate: linear warm-up from 0 over `warmup_epochs`, then constant,
    step decay (x factor at each milestone passed) or cosine decay to 0 at `total_epochs`."""
    if spec.warmup_epochs > 0 and epoch < spec.warmup_epochs:
        return epoch / spec.warmup_epochs
    if spec.kind == "constant":
        return 1.0
    if spec.kind == "step":
        return spec.factor ** len([m for m in spec.milestones if epoch >= m])
    if spec.kind == "cosine":
        span = total_epochs - spec.warmup_epochs
        if span <= 0:
            return 1.0
        progress = min(1.0, max(0.0, (epoch - spec.warmup_epochs) / span))
        return 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule {spec.kind!r}")
