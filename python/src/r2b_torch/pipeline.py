"""A run as a chain of stages (engine/pipeline.ts): each stage names its student, its teacher and its
initialisation by reference to an earlier stage (`stage:<name>`) or to another run's stage
(`run:<id>/<stage>`, loaded through `load_stage`). The stages train in order; each trained student is kept
only as long as a later stage refers to it (the last one to the end); completed stages of a resumed run are
loaded from their final checkpoints, not trained again. Plain records out, no files (runner.py writes them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from .checkpoint import Checkpoint, model_from_checkpoint
from .config import RunConfig
from .models import ResNet18
from .stage import StopSignal, run_stage, uses_teacher

if TYPE_CHECKING:
    from .distributed import Group


@dataclass
class Resume:
    """What a resumed run continues from: the final checkpoint of each completed stage (by name) and the last
    epoch checkpoint of the stage that was interrupted, if any."""

    completed: dict[str, Checkpoint] = field(default_factory=dict)
    current: Checkpoint | None = None


@dataclass
class PipelineResult:
    final: ResNet18 | None
    """The last stage's trained student; None when the run was stopped."""
    stopped: bool


def references(config: RunConfig, index: int) -> list[str]:
    """Names of the earlier stages a stage refers to (as teacher, when its losses use one, and as init)."""
    spec = config.stages[index]
    refs = [spec.init]
    if uses_teacher(spec):
        refs.append(spec.teacher)
    return [r[6:] for r in refs if r.startswith("stage:")]


def external_references(config: RunConfig) -> list[tuple[str, str, str]]:
    """(ref, run id, stage) of every `run:<id>/<stage>` reference the stages make, once each, in order."""
    out: list[tuple[str, str, str]] = []
    for spec in config.stages:
        for ref in (spec.teacher, spec.init):
            if ref.startswith("run:") and ref not in [r for r, _, _ in out]:
                run_id, stage = ref[4:].split("/", 1)
                out.append((ref, run_id, stage))
    return out


def run_pipeline(
    config: RunConfig,
    data,
    resume: Resume | None = None,
    load_stage: Callable[[str, str], Checkpoint] | None = None,
    signal: StopSignal | None = None,
    device: torch.device | str = "cpu",
    group: Group | None = None,
) -> Iterator[dict[str, Any]]:
    """Yields every stage's records (run_stage's, data-parallel over `group` when given); returns a
    PipelineResult."""
    device = torch.device(device)
    trained: dict[str, ResNet18] = {}
    external: dict[str, ResNet18] = {}
    last_use: dict[str, int] = {}
    for i in range(len(config.stages)):
        for name in references(config, i):
            last_use[name] = i
    last_name = config.stages[-1].name

    def resolve(ref: str) -> ResNet18 | None:
        if ref == "none":
            return None
        if ref.startswith("stage:"):
            model = trained.get(ref[6:])
            if model is None:
                raise ValueError(f"{ref} has not been trained in this run")
            return model
        if ref in external:
            return external[ref]
        if load_stage is None:
            raise ValueError(f"{ref}: no loader for other runs' stages")
        run_id, stage = ref[4:].split("/", 1)
        model = model_from_checkpoint(load_stage(run_id, stage)).to(device)
        external[ref] = model
        return model

    def release(index: int) -> None:
        for name in list(trained):
            if last_use.get(name, -1) <= index and name != last_name:
                del trained[name]

    stopped = False
    for index, spec in enumerate(config.stages):
        if stopped:
            break
        done = resume.completed.get(spec.name) if resume is not None else None
        if done is not None:
            trained[spec.name] = model_from_checkpoint(done).to(device)
            release(index)
            continue
        teacher = resolve(spec.teacher) if uses_teacher(spec) else None
        init = resolve(spec.init)
        current = resume.current if resume is not None else None
        resume_point = current if current is not None and current.manifest.get("stage") == spec.name else None
        stage = run_stage(config, index, data, teacher, init, resume_point, signal, device, group)
        while True:
            try:
                record = next(stage)
            except StopIteration as end:
                trained[spec.name] = end.value
                break
            if record["kind"] == "stage-end" and record["stopped"]:
                stopped = True
            yield record
        release(index)
    final = None if stopped else trained.pop(last_name, None)
    return PipelineResult(final=final, stopped=stopped)
