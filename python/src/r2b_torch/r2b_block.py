"""The binary block of Fig. 1 (Martinez et al., 2020), one half block per 3x3 convolution:

    x --> BN --> q(.) --> conv3x3 --> (*) scale --> PReLU --> (+) --> out
    |      `----------> gate G(BN output) --'                  ^
    `--------------------- shortcut ---------------------------'

The gate reads the real-valued BN output, before the quantizer. A shape change (stride 2, channels x2) puts
AvgPool 2x2/2 -> 1x1 conv (real or binary) -> BN on the shortcut; a binary one reads the BN output too.
Mirrors engine/r2b-block.ts; tensors are NCHW.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn as nn

from .layers import BatchNorm, ForwardContext, Gate, LearnedScale, ParamStore, PReLU, QuantConv2d, QuantConvOptions
from .padding import PoolGradient, avg_pool_same
from .quantizers import ActivationQuantizer, WeightScale


@dataclass(frozen=True)
class BinaryBlockOptions:
    activation: ActivationQuantizer
    weights: Literal["real", "sign"]
    scaling: Literal["gate", "learned", "none"]
    downsample: Literal["real", "binary"]
    weight_scale: WeightScale
    pad_value: Literal[0, 1]
    ste_clip: float
    gate_reduction: int
    bn_momentum: float
    bn_epsilon: float
    prelu_init: float


class DownsampleShortcut(nn.Module):
    """AvgPool 2x2/2 ('same') -> 1x1 conv -> BN; shared by the binary and the real blocks."""

    def __init__(
        self,
        store: ParamStore,
        name: str,
        in_channels: int,
        out_channels: int,
        input_quantizer: ActivationQuantizer,
        kernel_quantizer: Literal["real", "sign"],
        weight_scale: WeightScale,
        pad_value: Literal[0, 1],
        bn_momentum: float,
        bn_epsilon: float,
        ste_clip: float,
    ) -> None:
        super().__init__()
        self.name = name
        options = QuantConvOptions(
            in_channels=in_channels,
            filters=out_channels,
            kernel_size=1,
            strides=1,
            input_quantizer=input_quantizer,
            kernel_quantizer=kernel_quantizer,
            weight_scale=weight_scale,
            pad_value=pad_value,
            ste_clip=ste_clip,
        )
        self.conv = QuantConv2d(store, f"{name}.conv", options)
        self.bn = BatchNorm(store, f"{name}.bn", out_channels, bn_momentum, bn_epsilon)
        # See avg_pool_same: "tfjs" reproduces tfjs's gradient of an overhanging pooling window.
        self.pool_gradient: PoolGradient = "tfjs"

    def forward(self, x: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        return self.bn(self.conv(avg_pool_same(x, 2, 2, self.pool_gradient), ctx), ctx)


class HalfBinaryBlock(nn.Module):
    """BN -> q -> 3x3 conv -> gate or learned scale -> PReLU, plus the shortcut."""

    def __init__(
        self,
        store: ParamStore,
        name: str,
        in_channels: int,
        out_channels: int,
        strides: int,
        output_size: int,
        o: BinaryBlockOptions,
    ) -> None:
        super().__init__()
        self.name = name
        kernel: Literal["real", "sign"] = "sign" if o.weights == "sign" else "real"
        # Created in the tfjs order (bn, conv, gate, scale, prelu, shortcut): checkpoints list tensors so.
        self.bn = BatchNorm(store, f"{name}.bn", in_channels, o.bn_momentum, o.bn_epsilon)
        self.conv = QuantConv2d(
            store,
            f"{name}.conv",
            QuantConvOptions(
                in_channels=in_channels,
                filters=out_channels,
                kernel_size=3,
                strides=strides,
                input_quantizer=o.activation,
                kernel_quantizer=kernel,
                weight_scale=o.weight_scale,
                pad_value=o.pad_value,
                ste_clip=o.ste_clip,
            ),
        )
        self.gate = (
            Gate(store, f"{name}.gate", in_channels, out_channels, o.gate_reduction) if o.scaling == "gate" else None
        )
        self.scale = (
            LearnedScale(store, f"{name}.scale", output_size, output_size, out_channels)
            if o.scaling == "learned"
            else None
        )
        self.prelu = PReLU(store, f"{name}.prelu", out_channels, o.prelu_init)
        self.binary_shortcut = o.downsample == "binary"
        self.shortcut = (
            DownsampleShortcut(
                store,
                f"{name}.shortcut",
                in_channels,
                out_channels,
                input_quantizer=o.activation if self.binary_shortcut else "identity",
                kernel_quantizer=kernel if self.binary_shortcut else "real",
                weight_scale=o.weight_scale,
                pad_value=o.pad_value,
                bn_momentum=o.bn_momentum,
                bn_epsilon=o.bn_epsilon,
                ste_clip=o.ste_clip,
            )
            if strides > 1 or in_channels != out_channels
            else None
        )

    def forward(self, x: torch.Tensor, ctx: ForwardContext) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The half block's output and, when gated, its gate values [N, C_out]."""
        normalised = self.bn(x, ctx)
        # A binary downsample binarises the block's BN output (its learned threshold), as the main branch does.
        shortcut_input = normalised if self.binary_shortcut else x
        shortcut = self.shortcut(shortcut_input, ctx) if self.shortcut is not None else x
        conv_output = self.conv(normalised, ctx)
        scaled, gate = conv_output, None
        if self.gate is not None:
            scaled, gate = self.gate(normalised, conv_output, ctx)
        elif self.scale is not None:
            scaled = self.scale(conv_output)
        return self.prelu(scaled, ctx) + shortcut, gate


class BinaryBlock(nn.Module):
    """Two half blocks; the second keeps the shape. The block's output is an attention transfer point."""

    def __init__(
        self,
        store: ParamStore,
        name: str,
        in_channels: int,
        out_channels: int,
        strides: int,
        output_size: int,
        options: BinaryBlockOptions,
    ) -> None:
        super().__init__()
        self.name = name
        self.a = HalfBinaryBlock(store, f"{name}a", in_channels, out_channels, strides, output_size, options)
        self.b = HalfBinaryBlock(store, f"{name}b", out_channels, out_channels, 1, output_size, options)

    def forward(
        self, x: torch.Tensor, ctx: ForwardContext
    ) -> tuple[torch.Tensor, list[tuple[str, torch.Tensor | None]]]:
        mid, gate_a = self.a(x, ctx)
        out, gate_b = self.b(mid, ctx)
        return out, [(self.a.name, gate_a), (self.b.name, gate_b)]
