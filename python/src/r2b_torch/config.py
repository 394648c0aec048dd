"""The run config of src/shared/run-config.ts as Python dataclasses.

Field names are snake_case here and camelCase in JSON (`label_smoothing` <-> `labelSmoothing`); defaults are
the zod schema's, so a partial config parses as the TypeScript side would parse it. Unknown keys are ignored,
as zod's object schemas strip them. Presets and `--set` overrides stay on the TypeScript side: this module
reads configs that side wrote (run.json, stage specs).
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Literal


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def from_json(cls: type, data: dict[str, Any] | None) -> Any:
    """A dataclass from its camelCase JSON, nested dataclasses and lists of them included; missing keys take
    the defaults."""
    data = data or {}
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        key = camel(f.name)
        if key not in data:
            continue
        values[f.name] = _convert(hints[f.name], data[key])
    obj = cls(**values)
    validate = getattr(obj, "validate", None)
    if validate:
        validate()
    return obj


def _convert(hint: Any, value: Any) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_json(hint, value)
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        return [_convert(item, v) for v in value]
    return value


def to_json(obj: Any) -> Any:
    """camelCase JSON of a dataclass (recursively)."""
    if dataclasses.is_dataclass(obj):
        return {camel(f.name): to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list):
        return [to_json(v) for v in obj]
    return obj


def _one_of(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: {value!r} is not one of {', '.join(map(repr, allowed))}")


ACTIVATIONS = ("identity", "tanh", "sign", "approxsign")


@dataclass
class StudentSpec:
    architecture: Literal["resnet", "binary"] = "binary"
    activation: Literal["identity", "tanh", "sign", "approxsign"] = "sign"
    weights: Literal["real", "sign"] = "real"
    scaling: Literal["gate", "learned", "none"] = "gate"

    def validate(self) -> None:
        _one_of("architecture", self.architecture, ("resnet", "binary"))
        _one_of("activation", self.activation, ACTIVATIONS)
        _one_of("weights", self.weights, ("real", "sign"))
        _one_of("scaling", self.scaling, ("gate", "learned", "none"))


@dataclass
class CrossEntropySpec:
    weight: float = 1.0
    label_smoothing: float = 0.0


@dataclass
class AttentionSpec:
    weight: float = 0.0
    form: Literal["paper", "larq"] = "larq"

    def validate(self) -> None:
        _one_of("attention.form", self.form, ("paper", "larq"))


@dataclass
class DistillationSpec:
    weight: float = 0.0
    temperature: float = 1.0


@dataclass
class LossSpec:
    cross_entropy: CrossEntropySpec = field(default_factory=CrossEntropySpec)
    attention: AttentionSpec = field(default_factory=AttentionSpec)
    distillation: DistillationSpec = field(default_factory=DistillationSpec)


OPTIMIZER_KINDS = ("adamw", "sgd")


@dataclass
class OptimizerSpec:
    """`adamw` or `sgd` (optimizer.py has both rules); beta1, beta2 and epsilon are Adam's, momentum SGD's."""

    kind: Literal["adamw", "sgd"] = "adamw"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-7
    momentum: float = 0.0

    def validate(self) -> None:
        _one_of("optimizer.kind", self.kind, OPTIMIZER_KINDS)


@dataclass
class ScheduleSpec:
    kind: Literal["step", "cosine", "constant"] = "step"
    warmup_epochs: float = 0.0
    milestones: list[float] = field(default_factory=list)
    factor: float = 0.1

    def validate(self) -> None:
        _one_of("schedule.kind", self.kind, ("step", "cosine", "constant"))


@dataclass
class AugmentSpec:
    flip: bool = False
    crop_padding: int = 0
    rotation_degrees: float = 0.0
    mixup_alpha: float = 0.0
    resized_crop_min_area: float = 0.0
    color_jitter: float = 0.0


_STAGE_REF = re.compile(r"^(none|stage:[\w+-]+|run:[\w.+-]+/[\w+-]+)$")


@dataclass
class StageSpec:
    name: str = "stage"
    student: StudentSpec = field(default_factory=StudentSpec)
    teacher: str = "none"
    init: str = "none"
    losses: LossSpec = field(default_factory=LossSpec)
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)
    augment: AugmentSpec = field(default_factory=AugmentSpec)
    epochs: int = 1
    steps_per_epoch: int = 0
    batch_size: int = 32

    def validate(self) -> None:
        for ref in (self.teacher, self.init):
            if not _STAGE_REF.match(ref):
                raise ValueError(f"stage {self.name}: {ref!r} is not none, stage:<name> or run:<runId>/<stage>")


@dataclass
class ModelSpec:
    width: float = 1.0
    stem: Literal["auto", "imagenet", "cifar"] = "auto"
    downsample: Literal["real", "binary"] = "real"
    binary_padding: Literal["one", "zero"] = "one"
    ste_clip: float = 1.0
    gate_reduction: int = 8
    weight_scale: Literal["none", "mean", "learned"] = "none"
    latent_clip: bool = True
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3
    prelu_init: float = 0.0

    def validate(self) -> None:
        _one_of("model.stem", self.stem, ("auto", "imagenet", "cifar"))
        _one_of("model.downsample", self.downsample, ("real", "binary"))
        _one_of("model.binaryPadding", self.binary_padding, ("one", "zero"))
        _one_of("model.weightScale", self.weight_scale, ("none", "mean", "learned"))


@dataclass
class DataSpec:
    dataset: str = "fashion-mnist"
    input_size: int = 28
    stored_size: int = 0
    """The side the dataset stores, when larger than the input (0: the same): see run-config.ts DataSpec."""
    channels: int = 1
    classes: int = 10
    test_limit: int = 0


@dataclass
class EvalSpec:
    probes: int = 8
    gate_subset: int = 256
    batch_size: int = 64


@dataclass
class RunConfig:
    version: int = 1
    preset: str = "quick"
    pipeline: str = "r2b"
    seed: int = 1
    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)
    stages: list[StageSpec] = field(default_factory=list)

    def validate(self) -> None:
        if not self.stages:
            raise ValueError("a run config needs at least one stage")
        seen: set[str] = set()
        for stage in self.stages:
            if stage.name in seen:
                raise ValueError(f"duplicate stage {stage.name}")
            for ref in (stage.teacher, stage.init):
                if ref.startswith("stage:") and ref[6:] not in seen:
                    raise ValueError(f"{ref} is not an earlier stage")
            seen.add(stage.name)


def parse_run_config(data: dict[str, Any]) -> RunConfig:
    return from_json(RunConfig, data)


def parse_stage_spec(data: dict[str, Any]) -> StageSpec:
    return from_json(StageSpec, data)
