"""ResNet-18 as the method uses it (engine/models.ts): the real teacher (basic blocks) and the binary network
of Fig. 1, with the same stem, the same 8 blocks (the attention transfer points) and the same head, so a
teacher and a student can be matched point by point. Built from the ModelBuild JSON that checkpoints carry.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn as nn

from . import kinks
from . import layout as L
from .config import ACTIVATIONS, RunConfig, StudentSpec
from .layers import BatchNorm, Dense, ForwardContext, ParamStore, QuantConv2d, QuantConvOptions, forward_context
from .ops import mean_over
from .padding import PoolGradient, max_pool_same
from .r2b_block import BinaryBlock, BinaryBlockOptions, DownsampleShortcut

TRANSFER_POINTS = [f"block_{i}" for i in range(1, 9)]

# ModelBuild's JSON keys in the order models.ts writes them (checkpoint manifests carry this object).
_BUILD_KEYS = {
    "architecture": "architecture",
    "activation": "activation",
    "weights": "weights",
    "scaling": "scaling",
    "width": "width",
    "stem": "stem",
    "downsample": "downsample",
    "padValue": "pad_value",
    "steClip": "ste_clip",
    "gateReduction": "gate_reduction",
    "weightScale": "weight_scale",
    "bnMomentum": "bn_momentum",
    "bnEpsilon": "bn_epsilon",
    "preluInit": "prelu_init",
    "inputSize": "input_size",
    "channels": "channels",
    "classes": "classes",
    "seed": "seed",
}


@dataclass(frozen=True)
class ModelBuild:
    """Everything needed to rebuild a model: plain JSON, stored in checkpoints (models.ts ModelBuild)."""

    architecture: Literal["resnet", "binary"]
    activation: Literal["identity", "tanh", "sign", "approxsign"]
    weights: Literal["real", "sign"]
    scaling: Literal["gate", "learned", "none"]
    width: float
    stem: Literal["imagenet", "cifar"]
    downsample: Literal["real", "binary"]
    pad_value: Literal[0, 1]
    ste_clip: float
    gate_reduction: int
    weight_scale: Literal["none", "mean", "learned"]
    bn_momentum: float
    bn_epsilon: float
    prelu_init: float
    input_size: int
    channels: int
    classes: int
    seed: int

    @staticmethod
    def from_json(data: dict[str, Any]) -> ModelBuild:
        missing = [k for k in _BUILD_KEYS if k not in data]
        if missing:
            raise ValueError(f"model build lacks {', '.join(missing)}")
        build = ModelBuild(**{attr: data[key] for key, attr in _BUILD_KEYS.items()})
        build.validate()
        return build

    def to_json(self) -> dict[str, Any]:
        return {key: getattr(self, attr) for key, attr in _BUILD_KEYS.items()}

    def validate(self) -> None:
        checks = {
            "architecture": ("resnet", "binary"),
            "activation": ACTIVATIONS,
            "weights": ("real", "sign"),
            "scaling": ("gate", "learned", "none"),
            "stem": ("imagenet", "cifar"),
            "downsample": ("real", "binary"),
            "pad_value": (0, 1),
            "weight_scale": ("none", "mean", "learned"),
        }
        for attr, allowed in checks.items():
            if getattr(self, attr) not in allowed:
                raise ValueError(f"model build: {attr} = {getattr(self, attr)!r}, expected one of {allowed}")


def resolve_stem(stem: str, input_size: int) -> Literal["imagenet", "cifar"]:
    if stem != "auto":
        return stem  # type: ignore[return-value]
    return "imagenet" if input_size >= 64 else "cifar"


def model_build(config: RunConfig, student: StudentSpec, seed: int | None = None) -> ModelBuild:
    """models.ts modelBuild: the build of a stage's student from the run config."""
    real = student.architecture == "resnet"
    m = config.model
    return ModelBuild(
        architecture=student.architecture,
        activation="identity" if real else student.activation,
        weights="real" if real else student.weights,
        scaling="none" if real else student.scaling,
        width=m.width,
        stem=resolve_stem(m.stem, config.data.input_size),
        downsample=m.downsample,
        pad_value=1 if m.binary_padding == "one" else 0,
        ste_clip=m.ste_clip,
        gate_reduction=m.gate_reduction,
        weight_scale=m.weight_scale,
        bn_momentum=m.bn_momentum,
        bn_epsilon=m.bn_epsilon,
        prelu_init=m.prelu_init,
        input_size=config.data.input_size,
        channels=config.data.channels,
        classes=config.data.classes,
        seed=config.seed if seed is None else seed,
    )


def stage_widths(width: float) -> list[int]:
    # JS Math.round rounds halves up; Python's round() would round them to even.
    return [max(1, math.floor(c * width + 0.5)) for c in (64, 128, 256, 512)]


@dataclass
class ForwardResult:
    logits: torch.Tensor
    points: list[torch.Tensor]
    """Outputs of the 8 blocks (NCHW), in TRANSFER_POINTS order."""
    gates: list[tuple[str, torch.Tensor]]
    """Gate values per gated half block: (half-block name, [N, C_out])."""


def _real_conv(store: ParamStore, name: str, cin: int, cout: int, k: int, s: int, ste_clip: float) -> QuantConv2d:
    return QuantConv2d(
        store,
        name,
        QuantConvOptions(
            in_channels=cin,
            filters=cout,
            kernel_size=k,
            strides=s,
            input_quantizer="identity",
            kernel_quantizer="real",
            weight_scale="none",
            pad_value=0,
            ste_clip=ste_clip,
        ),
    )


class RealBlock(nn.Module):
    """The real ResNet basic block: conv -> BN -> ReLU -> conv -> BN, + shortcut, ReLU."""

    def __init__(self, store: ParamStore, name: str, cin: int, cout: int, strides: int, b: ModelBuild) -> None:
        super().__init__()
        self.name = name
        # tfjs names: <block>a.conv, <block>a.bn, <block>b.conv, <block>b.bn, <block>.shortcut.
        self.conv1 = _real_conv(store, f"{name}a.conv", cin, cout, 3, strides, b.ste_clip)
        self.bn1 = BatchNorm(store, f"{name}a.bn", cout, b.bn_momentum, b.bn_epsilon)
        self.conv2 = _real_conv(store, f"{name}b.conv", cout, cout, 3, 1, b.ste_clip)
        self.bn2 = BatchNorm(store, f"{name}b.bn", cout, b.bn_momentum, b.bn_epsilon)
        self.shortcut = (
            DownsampleShortcut(
                store,
                f"{name}.shortcut",
                cin,
                cout,
                input_quantizer="identity",
                kernel_quantizer="real",
                weight_scale="none",
                pad_value=0,
                bn_momentum=b.bn_momentum,
                bn_epsilon=b.bn_epsilon,
                ste_clip=b.ste_clip,
            )
            if strides > 1 or cin != cout
            else None
        )

    def forward(self, x: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        shortcut = self.shortcut(x, ctx) if self.shortcut is not None else x
        h = kinks.relu(self.bn1(self.conv1(x, ctx), ctx), ctx, f"{self.name}a.relu")
        return kinks.relu(self.bn2(self.conv2(h, ctx), ctx) + shortcut, ctx, f"{self.name}.relu")


class ResNet18(nn.Module):
    """The teacher (architecture `resnet`) or the binary network (`binary`) of a ModelBuild.

    `store` names every tensor as the tfjs ParamStore does; forward takes NCHW images. `pool_gradient` is the
    shortcut pooling's gradient where a window overhangs an odd-sized input (padding.avg_pool_same): "tfjs"
    (default) trains exactly as the tfjs engine does, "exact" uses the true gradient."""

    def __init__(self, build: ModelBuild, pool_gradient: PoolGradient = "tfjs") -> None:
        super().__init__()
        b = self.build = build
        store = self.store = ParamStore(b.seed)
        widths = stage_widths(b.width)
        first = widths[0]
        imagenet = b.stem == "imagenet"
        self.stem_conv = _real_conv(
            store, "stem.conv", b.channels, first, 7 if imagenet else 3, 2 if imagenet else 1, b.ste_clip
        )
        self.stem_bn = BatchNorm(store, "stem.bn", first, b.bn_momentum, b.bn_epsilon)
        size = math.ceil(math.ceil(b.input_size / 2) / 2) if imagenet else b.input_size
        options = BinaryBlockOptions(
            activation=b.activation,
            weights=b.weights,
            scaling=b.scaling,
            downsample=b.downsample,
            weight_scale=b.weight_scale,
            pad_value=b.pad_value,
            ste_clip=b.ste_clip,
            gate_reduction=b.gate_reduction,
            bn_momentum=b.bn_momentum,
            bn_epsilon=b.bn_epsilon,
            prelu_init=b.prelu_init,
        )
        blocks: list[nn.Module] = []
        cin = first
        for i, name in enumerate(TRANSFER_POINTS):
            cout = widths[i // 2]
            strides = 2 if i >= 2 and i % 2 == 0 else 1
            size = math.ceil(size / strides)
            if b.architecture == "binary":
                blocks.append(BinaryBlock(store, name, cin, cout, strides, size, options))
            else:
                blocks.append(RealBlock(store, name, cin, cout, strides, b))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.head = Dense(store, "head.logits", cin, b.classes, bias=True, init="glorot")
        for module in self.modules():
            if isinstance(module, DownsampleShortcut):
                module.pool_gradient = pool_gradient

    def forward(self, images: torch.Tensor, ctx: ForwardContext | None = None) -> ForwardResult:
        """Logits, transfer points and gates of NCHW images; without a context, train or eval by self.training."""
        if ctx is None:
            ctx = forward_context(self.training)
        x = kinks.relu(self.stem_bn(self.stem_conv(images, ctx), ctx), ctx, "stem.relu")
        if self.build.stem == "imagenet":
            x = max_pool_same(x, 3, 2)
        points: list[torch.Tensor] = []
        gates: list[tuple[str, torch.Tensor]] = []
        for block in self.blocks:
            if isinstance(block, BinaryBlock):
                x, block_gates = block(x, ctx)
                gates.extend((name, values) for name, values in block_gates if values is not None)
            else:
                x = block(x, ctx)
            points.append(x)
        pooled = mean_over(x, (2, 3))
        return ForwardResult(logits=self.head(pooled), points=points, gates=gates)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Logits only, in inference mode."""
        return self.forward(images, forward_context(False)).logits

    def named_weights(self) -> Iterator[tuple[str, nn.Parameter]]:
        """Trainable tensors by tfjs local name, in the tfjs order (this package's layout)."""
        for name, entry in self.store.weights.items():
            yield name, entry.tensor  # type: ignore[misc]

    def tf_tensors(self) -> Iterator[tuple[str, str, torch.Tensor]]:
        """(group, name, tensor in tfjs layout) for every weight and BN statistic, in checkpoint order."""
        for name, entry in self.store.entries():
            yield entry.group, name, L.to_tf(entry.tensor.detach(), entry.layout)

    def binary_layer_kernels(self) -> list[tuple[str, torch.Tensor]]:
        """Latent kernels of the binary architecture's convolutions (3x3 and binary shortcuts), for sign-flip
        statistics; empty for the real network (models.ts binaryLayerKernels)."""
        if self.build.architecture != "binary":
            return []
        out = []
        for block in self.blocks:
            for half in (block.a, block.b):
                out.append((half.conv.name, half.conv.kernel))
                if half.shortcut is not None and self.build.downsample == "binary":
                    out.append((half.shortcut.conv.name, half.shortcut.conv.kernel))
        return out
