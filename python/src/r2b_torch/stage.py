"""One stage of a pipeline as pure functions (engine/stage.ts): the student trained on labels and, when the
stage has a teacher, on the teacher's attention maps and logits. The teacher runs in inference mode without
autograd: no gradient reaches it and its BN statistics stay where they are.

`train_step` and `evaluate` are the pieces; `run_stage` drives them over a dataset as runStage does and yields
plain records (no files: pipeline.py chains stages, runner.py writes the run folder). Images are NCHW tensors,
labels [N, classes] target distributions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .attention import attention_loss, attention_map
from .checkpoint import Checkpoint, copy_matching_weights, restore_checkpoint, save_checkpoint
from .config import RunConfig, StageSpec
from .data import Prefetch, to_torch
from .layers import ForwardContext, apply_bn_updates, forward_context
from .losses import cross_entropy, distillation_loss, top_k_correct, top_k_hits
from .models import TRANSFER_POINTS, ForwardResult, ResNet18, model_build
from .optimizer import Optimizer, optimizer_for
from .quantizers import sign_plus_one
from .rng import mix_seed
from .schedule import schedule_multiplier

if TYPE_CHECKING:
    from .distributed import Group, Replica


def uses_teacher(spec: StageSpec) -> bool:
    """Whether a stage's losses need its teacher."""
    return spec.teacher != "none" and (spec.losses.attention.weight > 0 or spec.losses.distillation.weight > 0)


@dataclass
class Stage:
    """What StageTrainer holds: the stage's spec, its student, the student's optimiser and the teacher."""

    spec: StageSpec
    student: ResNet18
    optimizer: Optimizer
    teacher: ResNet18 | None


def build_stage(
    config: RunConfig,
    stage_index: int,
    teacher: ResNet18 | None = None,
    init: ResNet18 | None = None,
    device: torch.device | str | None = None,
) -> Stage:
    """The student of stage `stage_index` (seeded mixSeed(config.seed, stage_index)), initialised from `init`
    where names and shapes match, on `device`, with its optimiser (StageTrainer's constructor)."""
    spec = config.stages[stage_index]
    needs = uses_teacher(spec)
    if needs and teacher is None:
        raise ValueError(f"stage {spec.name} needs its teacher ({spec.teacher})")
    student = ResNet18(model_build(config, spec.student, mix_seed(config.seed, stage_index)))
    if device is not None:
        student.to(device)
    if init is not None:
        copy_matching_weights(init, student)
    optimizer = optimizer_for(student, spec.optimizer, config.model.latent_clip)
    return Stage(spec, student, optimizer, teacher if needs else None)


@dataclass
class TeacherOutputs:
    logits: torch.Tensor
    points: list[torch.Tensor]


@torch.no_grad()
def teacher_outputs(teacher: ResNet18 | None, images: torch.Tensor) -> TeacherOutputs | None:
    if teacher is None:
        return None
    out = teacher(images, forward_context(False))
    return TeacherOutputs(out.logits, out.points)


@dataclass
class StepTensors:
    total: torch.Tensor
    cross_entropy: torch.Tensor
    attention: torch.Tensor
    distillation: torch.Tensor
    logits: torch.Tensor


def stage_loss(
    spec: StageSpec, out: ForwardResult, labels: torch.Tensor, teacher: TeacherOutputs | None
) -> StepTensors:
    """The stage's weighted loss and its unweighted components."""
    losses = spec.losses
    zero = out.logits.new_zeros(())
    ce = cross_entropy(out.logits, labels, losses.cross_entropy.label_smoothing)
    att = (
        attention_loss(out.points, teacher.points, losses.attention.form)
        if teacher is not None and losses.attention.weight > 0
        else zero
    )
    kd = (
        distillation_loss(out.logits, teacher.logits, losses.distillation.temperature)
        if teacher is not None and losses.distillation.weight > 0
        else zero
    )
    total = ce * losses.cross_entropy.weight + att * losses.attention.weight + kd * losses.distillation.weight
    return StepTensors(total, ce, att, kd, out.logits)


def stage_gradients(
    student: ResNet18,
    spec: StageSpec,
    images: torch.Tensor,
    labels: torch.Tensor,
    teacher: ResNet18 | None = None,
    ctx: ForwardContext | None = None,
) -> tuple[dict[str, torch.Tensor | None], StepTensors]:
    """Gradients of the stage loss by tfjs local name (this package's layout; None where the loss does not
    reach a tensor) and the loss tensors. The context collects the BN updates (apply them after the step)."""
    ctx = ctx if ctx is not None else forward_context(True)
    targets = teacher_outputs(teacher if uses_teacher(spec) else None, images)
    parts = stage_loss(spec, student(images, ctx), labels, targets)
    names = list(student.store.weights)
    tensors = [student.store.weights[n].tensor for n in names]
    grads = torch.autograd.grad(parts.total, tensors, allow_unused=True)
    return dict(zip(names, grads)), parts


def replica_gradients(
    replica: Replica,
    spec: StageSpec,
    images: torch.Tensor,
    labels: torch.Tensor,
    teacher: ResNet18 | None,
    ctx: ForwardContext,
) -> tuple[dict[str, torch.Tensor | None], StepTensors]:
    """stage_gradients in data-parallel training: this process's share through the DDP-wrapped student (the
    teacher on the same share), and the gradients DDP averaged over the processes during the backward pass."""
    targets = teacher_outputs(teacher if uses_teacher(spec) else None, images)
    parts = stage_loss(spec, replica.module(images, ctx), labels, targets)
    parts.total.backward()
    return replica.gradients(), parts


@dataclass
class LossComponents:
    cross_entropy: float
    attention: float
    distillation: float
    total: float


@dataclass
class StepResult:
    loss: LossComponents
    top1: int
    """Training images of the batch whose label is the top-1 (train mode, before the update)."""
    top5: int
    images: int
    """Images of the step: the global batch in data-parallel training."""


def train_step(
    student: ResNet18,
    optimizer: Optimizer,
    spec: StageSpec,
    images: torch.Tensor,
    labels: torch.Tensor,
    multiplier: float,
    teacher: ResNet18 | None = None,
    replica: Replica | None = None,
) -> StepResult:
    """One optimiser step of a stage at learning-rate multiplier `multiplier` (StageTrainer.step): gradients,
    the optimiser's update, then the BN moving statistics. Returns plain numbers. With `replica` (data-parallel
    training) `images` are this process's share and the numbers returned are the global batch's."""
    group = replica.group if replica is not None else None
    ctx = forward_context(True, sync=group if group is not None and group.sync_batch_norm else None)
    if replica is None:
        grads, parts = stage_gradients(student, spec, images, labels, teacher, ctx)
    else:
        grads, parts = replica_gradients(replica, spec, images, labels, teacher, ctx)
    optimizer.apply(grads, multiplier)
    with torch.no_grad():
        losses = torch.stack([parts.cross_entropy, parts.attention, parts.distillation, parts.total]).detach()
        hits = top_k_hits(parts.logits, labels, 5)
        if group is None:
            # One transfer to the host per step (a GPU synchronises once, not six times).
            values = torch.cat([losses, hits]).tolist()
            count = int(images.shape[0])
        else:
            # One all-reduce per step, which also makes the BN statistics the global batch's.
            values = group.reduce_step(losses, hits, ctx.bn_updates)
            count = int(images.shape[0]) * group.world_size
    apply_bn_updates(ctx)
    ce, att, kd, total, top1, top5 = values
    loss = LossComponents(cross_entropy=ce, attention=att, distillation=kd, total=total)
    return StepResult(loss=loss, top1=int(top1), top5=int(top5), images=count)


def steps_per_epoch(spec: StageSpec, train_size: int) -> int:
    """Batches per epoch: the training split in whole batches, capped by the stage's budget."""
    full = train_size // spec.batch_size
    return min(full, spec.steps_per_epoch) if spec.steps_per_epoch > 0 else full


def probe_indices(count: int, test_size: int) -> list[int]:
    """Evenly spaced fixed test images whose maps and gates are recorded every epoch."""
    n = min(count, test_size)
    return [(i * test_size) // n for i in range(n)]


@dataclass
class Accuracy:
    top1: float
    top5: float
    loss: float


@dataclass
class Evaluation:
    accuracy: Accuracy
    gate_means: dict[str, torch.Tensor] = field(default_factory=dict)
    """Mean gate values per half block over the first `gate_images` test images."""
    gate_images: int = 0


@torch.no_grad()
def evaluate(
    model: ResNet18,
    batches: Iterable[tuple[torch.Tensor, ...]],
    gate_subset: int = 0,
    group: Group | None = None,
) -> Evaluation:
    """Top-1/top-5 and mean cross-entropy over (images, labels) batches in inference mode, plus the gates'
    mean over the first `gate_subset` images (taken in whole batches, as stage.ts does).

    Split over processes (`group`): each evaluates its share of the batches, given as (images, labels, start)
    with `start` the position of the batch's first image in the whole evaluation, and the sums and counts of
    all are added up, so the result is the one-process evaluation of the same images (each batch is computed
    as one process computes it)."""
    count = top1 = top5 = 0
    loss = 0.0
    gate_images = 0
    sums: dict[str, torch.Tensor] = {}
    for item in batches:
        images, labels = item[0], item[1]
        start = item[2] if len(item) > 2 else count
        n = int(images.shape[0])
        out = model(images, forward_context(False))
        c1, c5 = top_k_correct(out.logits, labels, 5)
        if start < gate_subset:
            for block, values in out.gates:
                sums[block] = sums[block] + values.sum(0) if block in sums else values.sum(0)
            gate_images += n
        count += n
        top1 += c1
        top5 += c5
        loss += float(cross_entropy(out.logits, labels)) * n
    if group is not None:
        shares = group.gather(
            (count, top1, top5, loss, gate_images, {b: s.double().cpu().numpy() for b, s in sums.items()})
        )
        count, top1, top5, loss, gate_images = (sum(share[i] for share in shares) for i in range(5))
        device = next(iter(sums.values())).device if sums else "cpu"
        totals: dict[str, np.ndarray] = {}
        for share in shares:
            for block, values in share[5].items():
                totals[block] = totals[block] + values if block in totals else values
        sums = {block: torch.from_numpy(values).to(device, torch.float32) for block, values in totals.items()}
    means = {block: s / max(1, gate_images) for block, s in sums.items()}
    count = max(count, 1)
    return Evaluation(Accuracy(top1 / count, top5 / count, loss / count), means, gate_images)


def evaluation_batches(
    data, batch_size: int, limit: int, device: torch.device, shard: tuple[int, int] | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
    """(images, labels, start) of the test split's evaluation batches; with `shard` (rank, world size) whole
    batches dealt out in turn (rank r takes batches r, r + world size, ...), so a remainder batch or fewer
    batches than processes need no special case."""
    rank, world = shard if shard is not None else (0, 1)
    total = min(limit, data.test_size) if limit and limit > 0 else data.test_size
    for index, start in enumerate(range(0, total, batch_size)):
        if index % world == rank:
            yield (*to_torch(data.test_range(start, min(start + batch_size, total)), device), start)


@torch.no_grad()
def probe_snapshot(
    model: ResNet18, images: torch.Tensor, form: str
) -> tuple[list[torch.Tensor], list[tuple[str, torch.Tensor]]]:
    """Normalised attention maps [P, H, W] at every transfer point and gate values [P, C] per gated block."""
    out = model(images, forward_context(False))
    maps = [attention_map(p, form).reshape(p.shape[0], p.shape[2], p.shape[3]) for p in out.points]
    return maps, out.gates


@torch.no_grad()
def sign_snapshot(model: ResNet18) -> dict[str, torch.Tensor]:
    """Signs of every binary layer's latent kernel, to measure flips over an epoch."""
    return {layer: sign_plus_one(kernel).clone() for layer, kernel in model.binary_layer_kernels()}


@torch.no_grad()
def flip_ratios(model: ResNet18, before: dict[str, torch.Tensor]) -> dict[str, float]:
    """Fraction of each binary layer's latent weights whose sign changed since `before`."""
    return {
        layer: float((before[layer] != sign_plus_one(kernel)).float().mean())
        for layer, kernel in model.binary_layer_kernels()
    }


class StopSignal:
    """How a driver stops a stage from outside: `aborted` ends it at the next step boundary (the epoch in
    progress is not committed; the last checkpoint stays the resume point). `abandon_epoch` also drops an
    epoch whose last step has already run (a loss that stopped being finite must not be checkpointed)."""

    def __init__(self) -> None:
        self.aborted = False
        self.abandon_epoch = False


def _accuracy(a: Accuracy) -> dict[str, float]:
    return {"top1": a.top1, "top5": a.top5, "loss": a.loss}


def run_stage(
    config: RunConfig,
    stage_index: int,
    data,
    teacher: ResNet18 | None = None,
    init: ResNet18 | None = None,
    resume: Checkpoint | None = None,
    signal: StopSignal | None = None,
    device: torch.device | str = "cpu",
    group: Group | None = None,
) -> Iterator[dict[str, Any]]:
    """Trains one stage and yields its records (stage.ts runStage), returning the trained student.

    `data` is a DatasetReader (train_batches, test_batches, test_images, train_size, test_size). Records are
    plain dicts in the run format's field names: the light ones (`stage-start`, `step`, `epoch`, `stage-end`)
    are log lines as they are; `attention` and `gates` carry numpy arrays and `checkpoint` a Checkpoint, for
    the run folder to store. A driver pauses the stage by not pulling, and stops it through `signal`.

    Data-parallel (`group`): every process runs this with its share of each batch and of the evaluation and
    yields the same records with the global batch's numbers; only the writer (rank 0) computes snapshots and
    checkpoint payloads (the others yield no snapshot records, and checkpoint records without a payload).
    """
    device = torch.device(device)
    writer = group is None or group.is_writer
    shard = group.shard if group is not None else None
    stage = build_stage(config, stage_index, teacher=teacher, init=init, device=device)
    spec, student = stage.spec, stage.student
    per_epoch = steps_per_epoch(spec, data.train_size)
    start_epoch = 0
    if resume is not None:
        restore_checkpoint(student, resume, stage.optimizer)
        start_epoch = resume.epochs_completed
    replica = None
    if group is not None:
        from .distributed import Replica

        replica = Replica(group, student)
    form = spec.losses.attention.form
    probes = probe_indices(config.eval.probes, data.test_size) if writer else []
    probe_images = to_torch(data.test_images(probes), device)[0] if probes else None
    started = time.perf_counter()
    test: Accuracy | None = None
    stopped = False
    seed = mix_seed(config.seed, stage_index)

    yield {
        "kind": "stage-start",
        "stage": spec.name,
        "stageIndex": stage_index,
        "epochs": spec.epochs,
        "stepsPerEpoch": per_epoch,
        "startEpoch": start_epoch,
        "teacher": spec.teacher if stage.teacher is not None else None,
    }

    epoch = start_epoch
    while epoch < spec.epochs and not stopped:
        epoch_start = time.perf_counter()
        signs = sign_snapshot(student)
        seen = correct1 = correct5 = 0
        loss_sum = 0.0
        step = epoch * per_epoch
        batches = data.train_batches(
            spec.batch_size, epoch, seed=seed, augment=spec.augment, limit=per_epoch, shard=shard
        )
        if device.type != "cpu":
            batches = Prefetch(batches)
        try:
            for batch in batches:
                if signal is not None and signal.aborted:
                    stopped = True
                    break
                t0 = time.perf_counter()
                multiplier = schedule_multiplier(spec.schedule, step / per_epoch, spec.epochs)
                images, labels = to_torch(batch, device)
                result = train_step(student, stage.optimizer, spec, images, labels, multiplier, stage.teacher, replica)
                n = result.images
                seen += n
                correct1 += result.top1
                correct5 += result.top5
                loss_sum += result.loss.total * n
                elapsed = time.perf_counter() - t0
                yield {
                    "kind": "step",
                    "stage": spec.name,
                    "epoch": epoch,
                    "step": step,
                    "loss": {
                        "crossEntropy": result.loss.cross_entropy,
                        "attention": result.loss.attention,
                        "distillation": result.loss.distillation,
                        "total": result.loss.total,
                    },
                    "learningRate": spec.optimizer.learning_rate * multiplier,
                    "imagesPerSecond": n / elapsed if elapsed > 0 else math.inf,
                }
                step += 1
        finally:
            if isinstance(batches, Prefetch):
                batches.close()
        if signal is not None and signal.abandon_epoch:
            stopped = True
        if stopped:
            break

        flips = flip_ratios(student, signs)
        evaluation = evaluate(
            student,
            evaluation_batches(data, config.eval.batch_size, config.data.test_limit, device, shard),
            gate_subset=config.eval.gate_subset,
            group=group,
        )
        test = evaluation.accuracy
        yield {
            "kind": "epoch",
            "stage": spec.name,
            "epoch": epoch,
            "train": {
                "top1": correct1 / max(1, seen),
                "top5": correct5 / max(1, seen),
                "loss": loss_sum / max(1, seen),
            },
            "test": _accuracy(test),
            "flipRatios": [{"layer": layer, "ratio": ratio} for layer, ratio in flips.items()],
            "seconds": time.perf_counter() - epoch_start,
        }

        if probe_images is not None:
            maps, gates = probe_snapshot(student, probe_images, form)
            teacher_maps = probe_snapshot(stage.teacher, probe_images, form)[0] if stage.teacher is not None else None
            yield {
                "kind": "attention",
                "stage": spec.name,
                "epochsCompleted": epoch + 1,
                "probes": probes,
                "form": form,
                "points": [
                    {
                        "point": point,
                        "student": _numpy(maps[j]),
                        "teacher": _numpy(teacher_maps[j]) if teacher_maps is not None else None,
                    }
                    for j, point in enumerate(TRANSFER_POINTS)
                ],
            }
            if gates:
                yield {
                    "kind": "gates",
                    "stage": spec.name,
                    "epochsCompleted": epoch + 1,
                    "probes": probes,
                    "subset": evaluation.gate_images,
                    "gates": [
                        {
                            "block": block,
                            "mean": _numpy(evaluation.gate_means[block])
                            if block in evaluation.gate_means
                            else np.zeros(values.shape[1], dtype=np.float32),
                            "perProbe": _numpy(values),
                        }
                        for block, values in gates
                    ],
                }

        yield {
            "kind": "checkpoint",
            "stage": spec.name,
            "epochsCompleted": epoch + 1,
            "checkpoint": save_checkpoint(student, spec.name, epoch + 1, step, stage.optimizer) if writer else None,
        }
        epoch += 1

    yield {
        "kind": "stage-end",
        "stage": spec.name,
        "stageIndex": stage_index,
        "test": _accuracy(test) if test is not None else None,
        "seconds": time.perf_counter() - started,
        "stopped": stopped,
    }
    return student


def _numpy(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
