"""Explicit layers mirroring engine/layers.ts.

Every layer is an nn.Module whose tensors are also registered, under the tfjs engine's local names, in the
model's ParamStore: the store is what checkpoints, gradients-by-name and the optimiser use, so names and
(tfjs-layout) shapes match the tfjs ParamStore exactly. Layers run under a ForwardContext that says whether
this is a training pass (batch statistics, BN updates collected and applied after the step) and lets callers
observe named intermediate tensors (tap). Activations are NCHW (see layout.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import kinks
from . import layout as L
from .kinks import KinkAligner
from .ops import mean_over, scale_channels
from .padding import same_pads
from .quantizers import (
    ActivationQuantizer,
    WeightScale,
    is_binary_activation,
    quantize_activation,
    quantize_weights,
)
from .rng import seed_for

Tap = Callable[[str, torch.Tensor], None]


@dataclass
class BnUpdate:
    layer: BatchNorm
    mean: torch.Tensor
    variance: torch.Tensor


@dataclass
class ForwardContext:
    training: bool
    """A training pass: batch statistics in BN, and their updates collected."""
    bn_updates: list[BnUpdate] = field(default_factory=list)
    """Batch statistics of a training pass, applied to the moving statistics once the step is done."""
    tap: Tap | None = None
    """Sees named intermediate tensors (NCHW): `<conv>.pre` (before the quantizer), `<conv>.input`,
    `<conv>.kernel` ([out, in, kh, kw]), `<conv>.output`."""
    align: KinkAligner | None = None
    """Cross-engine conformance only: takes another engine's side at the kinks it listed (kinks.py)."""
    sync: SyncBatchNorm | None = None
    """Data-parallel training with SyncBatchNorm: training passes normalise with the global batch's statistics
    (distributed.Group)."""


class SyncBatchNorm(Protocol):
    def batch_norm(
        self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, epsilon: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(output, global batch mean, global biased variance) of a training-mode batch norm."""
        ...


def forward_context(
    training: bool, tap: Tap | None = None, align: KinkAligner | None = None, sync: SyncBatchNorm | None = None
) -> ForwardContext:
    return ForwardContext(training=training, tap=tap, align=align, sync=sync)


@torch.no_grad()
def apply_bn_updates(ctx: ForwardContext) -> None:
    """Moves the BN moving statistics one step: m * old + (1 - m) * batch (TensorFlow's momentum convention,
    the weight of the old value) with the biased batch variance, as applyBnUpdates in layers.ts."""
    for update in ctx.bn_updates:
        layer = update.layer
        m = layer.momentum
        layer.moving_mean.copy_(layer.moving_mean * m + update.mean * (1 - m))
        layer.moving_variance.copy_(layer.moving_variance * m + update.variance * (1 - m))
    ctx.bn_updates.clear()


Group = Literal["weights", "state"]


@dataclass
class ParamEntry:
    """One named tensor of a model: where it lives, its checkpoint group and its layout tag."""

    module: nn.Module
    attr: str
    group: Group
    layout: str

    @property
    def tensor(self) -> torch.Tensor:
        # Looked up at each access: Module.to() may replace buffers.
        return getattr(self.module, self.attr)

    @property
    def tf_shape(self) -> list[int]:
        return L.tf_shape(self.tensor.shape, self.layout)


class ParamStore:
    """The tensors of one model by tfjs local name, in the tfjs engine's creation order.

    `weights` are trainable, `state` the BN moving statistics; `decayed` names take weight decay (conv and
    dense kernels), `binary_kernels` are latent kernels binarised by sign (clipped after each update when the
    stage asks for it)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.weights: dict[str, ParamEntry] = {}
        self.state: dict[str, ParamEntry] = {}
        self.decayed: set[str] = set()
        self.binary_kernels: set[str] = set()

    def seed_for(self, name: str) -> int:
        return seed_for(self.seed, name)

    def _check(self, name: str) -> None:
        if name in self.weights or name in self.state:
            raise ValueError(f"duplicate variable {name}")

    def weight(
        self,
        module: nn.Module,
        attr: str,
        name: str,
        init: torch.Tensor,
        layout: str = L.PLAIN,
        decay: bool = False,
    ) -> nn.Parameter:
        """Registers `init` (already in this package's layout) as parameter `attr` of `module`."""
        self._check(name)
        param = nn.Parameter(init.to(torch.float32).contiguous())
        module.register_parameter(attr, param)
        self.weights[name] = ParamEntry(module, attr, "weights", layout)
        if decay:
            self.decayed.add(name)
        return param

    def stat(self, module: nn.Module, attr: str, name: str, init: torch.Tensor) -> torch.Tensor:
        self._check(name)
        module.register_buffer(attr, init.to(torch.float32).contiguous())
        self.state[name] = ParamEntry(module, attr, "state", L.PLAIN)
        return getattr(module, attr)

    def entries(self) -> Iterator[tuple[str, ParamEntry]]:
        """Weights, then state: the order of a tfjs checkpoint."""
        yield from self.weights.items()
        yield from self.state.items()


# Keras initialisers draw from a normal truncated at 2 sigma, sigma corrected for the truncation.
TRUNCATION_CORRECTION = 0.8796256610342398


def _truncated_normal(tf_shape: list[int], std: float, seed: int) -> torch.Tensor:
    """Same distribution as tf.truncatedNormal(shape, 0, std): N(0, std) resampled outside +-2 std. The values
    differ from tfjs's (its generator is not reproduced): models are exchanged through checkpoints."""
    out = torch.empty(tf_shape, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    nn.init.trunc_normal_(out, 0.0, std, -2 * std, 2 * std, generator=generator)
    return out


def glorot_normal(tf_shape: list[int], fan_in: int, fan_out: int, seed: int) -> torch.Tensor:
    return _truncated_normal(tf_shape, math.sqrt(2 / (fan_in + fan_out)) / TRUNCATION_CORRECTION, seed)


def he_normal(tf_shape: list[int], fan_in: int, seed: int) -> torch.Tensor:
    return _truncated_normal(tf_shape, math.sqrt(2 / fan_in) / TRUNCATION_CORRECTION, seed)


def _per_channel(v: torch.Tensor) -> torch.Tensor:
    return v.view(1, -1, 1, 1)


class BatchNorm(nn.Module):
    """Batch norm as layers.ts defines it: biased batch variance, epsilon inside the rsqrt, TensorFlow momentum
    (weight of the old statistic), the moving statistics moved by apply_bn_updates after the step.

    The normalisation itself is PyTorch's fused kernel (native_batch_norm without running statistics in
    training, F.batch_norm with the moving ones in inference): the same function as the written-out form, to
    rounding, at a fraction of its cost (one pass and one backward kernel instead of a dozen element-wise ops
    and their gradients). The batch mean and biased variance for the update come from the kernel's saved
    statistics; PyTorch's own running update (unbiased variance, momentum of the new value) is not used."""

    def __init__(self, store: ParamStore, name: str, channels: int, momentum: float, epsilon: float) -> None:
        super().__init__()
        self.name = name
        self.channels = channels
        self.momentum = momentum
        self.epsilon = epsilon
        store.weight(self, "gamma", f"{name}.gamma", torch.ones(channels))
        store.weight(self, "beta", f"{name}.beta", torch.zeros(channels))
        store.stat(self, "moving_mean", f"{name}.moving_mean", torch.zeros(channels))
        store.stat(self, "moving_variance", f"{name}.moving_variance", torch.ones(channels))

    def forward(self, x: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        if ctx.training:
            if ctx.sync is not None:
                out, mean, variance = ctx.sync.batch_norm(x, self.gamma, self.beta, self.epsilon)
                ctx.bn_updates.append(BnUpdate(self, mean, variance))
                return out
            if x.device.type not in ("cpu", "cuda"):
                # Elsewhere (MPS) the kernel's saved statistics are not documented to be (mean, invstd).
                with torch.no_grad():
                    variance, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
                ctx.bn_updates.append(BnUpdate(self, mean, variance))
                return F.batch_norm(x, None, None, self.gamma, self.beta, True, 0.0, self.epsilon)
            out, mean, invstd = torch.native_batch_norm(x, self.gamma, self.beta, None, None, True, 0.0, self.epsilon)
            with torch.no_grad():
                # The kernel's biased batch variance, back from its 1/sqrt(var + eps) (absolute error ~1e-7 of
                # var + eps): a separate var_mean pass would cost as much as the normalisation itself.
                variance = (invstd.square().reciprocal() - self.epsilon).clamp_min(0.0)
            ctx.bn_updates.append(BnUpdate(self, mean.detach(), variance))
            return out
        return F.batch_norm(x, self.moving_mean, self.moving_variance, self.gamma, self.beta, False, 0.0, self.epsilon)


@dataclass(frozen=True)
class QuantConvOptions:
    in_channels: int
    filters: int
    kernel_size: int
    strides: int
    input_quantizer: ActivationQuantizer
    kernel_quantizer: Literal["real", "sign"]
    weight_scale: WeightScale
    pad_value: Literal[0, 1]
    """Value binary-activation inputs are padded with."""
    ste_clip: float


class QuantConv2d(nn.Module):
    """larq's QuantConv2D without bias: q(input) conv q(kernel), TensorFlow 'same' geometry (asymmetric with
    stride 2). With +-1 inputs and pad_value 1 the quantized input is padded with +1, so every input the
    kernel sees is +-1; otherwise with 0, as tf.conv2d 'same' does."""

    def __init__(self, store: ParamStore, name: str, options: QuantConvOptions) -> None:
        super().__init__()
        self.name = name
        self.options = o = options
        k = o.kernel_size
        tf_shape = [k, k, o.in_channels, o.filters]
        init = glorot_normal(tf_shape, k * k * o.in_channels, k * k * o.filters, store.seed_for(name))
        store.weight(self, "kernel", f"{name}.kernel", L.from_tf(init, L.CONV), L.CONV, decay=True)
        if o.kernel_quantizer == "sign":
            store.binary_kernels.add(f"{name}.kernel")
        self.has_scale = o.kernel_quantizer == "sign" and o.weight_scale == "learned"
        if self.has_scale:
            store.weight(self, "weight_scale", f"{name}.weight_scale", torch.ones(o.filters))

    @property
    def binary_input(self) -> bool:
        return is_binary_activation(self.options.input_quantizer)

    @property
    def binary_kernel(self) -> bool:
        return self.options.kernel_quantizer == "sign"

    def quantized_kernel(self) -> torch.Tensor:
        if not self.binary_kernel:
            return self.kernel
        scale = self.weight_scale if self.has_scale else None
        return quantize_weights(self.kernel, self.options.weight_scale, scale)

    def forward(self, x: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        o = self.options
        if ctx.tap:
            ctx.tap(f"{self.name}.pre", x)
        # A +1 padding is computed as a zero padding of q(x) - 1 plus sum(kernel) as the convolution's bias:
        # conv(pad_1(q), w) = conv(pad_0(q - 1), w) + sum(w), as every window covers the whole kernel. No padded
        # copy of the batch (the convolution pads itself where the padding is symmetric) and no border pass.
        # Exact for +-1 kernels (integer sums) and to rounding for real ones; a scaled binary kernel (s * +-1)
        # keeps the padded form, since its exact zeros (balanced windows, common) must stay exactly 0 for the
        # PReLU's side to match the tfjs engine's.
        pad_one = self.binary_input and o.pad_value == 1
        shift = pad_one and not (self.binary_kernel and o.weight_scale != "none")
        if ctx.align is not None and self.binary_input:
            inputs = kinks.aligned_sign(x, ctx, self.name, o.input_quantizer, o.ste_clip)
            conv_input = inputs - 1 if shift else inputs
        else:
            conv_input = quantize_activation(x, o.input_quantizer, o.ste_clip, shifted=shift)
            inputs = conv_input + 1 if shift and ctx.tap else conv_input
        kernel = self.quantized_kernel()
        if ctx.tap:
            ctx.tap(f"{self.name}.input", inputs)
            ctx.tap(f"{self.name}.kernel", kernel)
        if conv_input.device.type == "cpu":
            # oneDNN convolves NHWC: channels-last activations (the logical NCHW shape unchanged) spare a
            # reorder of every convolution's input and output, and the element-wise ops between them follow
            # the layout (about 10% of a training step on CPU). A no-op once the stem's output is NHWC.
            conv_input = conv_input.contiguous(memory_format=torch.channels_last)
        bias = kernel.sum(dim=(1, 2, 3)) if shift else None
        left, right, top, bottom = pads = same_pads(x, o.kernel_size, o.strides)
        if pad_one and not shift:
            y = F.conv2d(F.pad(conv_input, pads, value=1.0), kernel, stride=o.strides)
        elif left == right == top == bottom:
            y = F.conv2d(conv_input, kernel, bias, stride=o.strides, padding=left)
        else:
            y = F.conv2d(F.pad(conv_input, pads), kernel, bias, stride=o.strides)
        if y.device.type == "cpu":
            y = y.contiguous(memory_format=torch.channels_last)  # the stem's 1-channel input leaves it NCHW
        if ctx.tap:
            ctx.tap(f"{self.name}.output", y)
        return y


class Dense(nn.Module):
    """x @ kernel (+ bias); the kernel is [out, in] here and [in, out] in tfjs."""

    def __init__(
        self,
        store: ParamStore,
        name: str,
        in_units: int,
        units: int,
        bias: bool,
        init: Literal["glorot", "he"],
    ) -> None:
        super().__init__()
        self.name = name
        self.in_units = in_units
        self.units = units
        seed = store.seed_for(name)
        tf_shape = [in_units, units]
        value = he_normal(tf_shape, in_units, seed) if init == "he" else glorot_normal(tf_shape, in_units, units, seed)
        store.weight(self, "kernel", f"{name}.kernel", L.from_tf(value, L.DENSE), L.DENSE, decay=True)
        self.has_bias = bias
        if bias:
            store.weight(self, "bias", f"{name}.bias", torch.zeros(units))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.kernel, self.bias if self.has_bias else None)


class PReLU(nn.Module):
    """Per-channel PReLU, slopes shared over space (Keras shared_axes=[1, 2])."""

    def __init__(self, store: ParamStore, name: str, channels: int, init: float) -> None:
        super().__init__()
        self.name = name
        store.weight(self, "alpha", f"{name}.alpha", torch.full((channels,), float(init)))

    def forward(self, x: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        return kinks.prelu(x, self.alpha, ctx, self.name)


class LearnedScale(nn.Module):
    """The strong baseline's learned scale as larq zoo factorises it: scale_h[H,1,1] * scale_w[1,W,1] *
    scale_c[1,1,C]. The factors keep tfjs's shapes (layout tag plain); their HWC product is moved to CHW."""

    def __init__(self, store: ParamStore, name: str, height: int, width: int, channels: int) -> None:
        super().__init__()
        self.name = name
        store.weight(self, "scale_h", f"{name}.scale_h", torch.ones(height, 1, 1))
        store.weight(self, "scale_w", f"{name}.scale_w", torch.ones(1, width, 1))
        store.weight(self, "scale_c", f"{name}.scale_c", torch.ones(1, 1, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hwc = self.scale_h * self.scale_w * self.scale_c
        return x * hwc.permute(2, 0, 1)


class Gate(nn.Module):
    """Real-to-Bin's data-driven channel re-scaling, from the real-valued activation before binarisation:
    GlobalAvgPool -> Dense(C_in -> C_in/r) -> ReLU -> Dense(-> C_out) -> sigmoid; no biases, he_normal."""

    def __init__(self, store: ParamStore, name: str, in_channels: int, out_channels: int, reduction: int) -> None:
        super().__init__()
        self.name = name
        hidden = max(1, in_channels // reduction)
        self.reduce = Dense(store, f"{name}.reduce", in_channels, hidden, bias=False, init="he")
        self.expand = Dense(store, f"{name}.expand", hidden, out_channels, bias=False, init="he")

    def values(self, real_input: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        """Gate values [N, C_out] in (0, 1)."""
        pooled = mean_over(real_input, (2, 3))
        return torch.sigmoid(self.expand(kinks.relu(self.reduce(pooled), ctx, f"{self.name}.relu")))

    def forward(
        self, real_input: torch.Tensor, conv_output: torch.Tensor, ctx: ForwardContext
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The conv output scaled per image and channel, and the gate values."""
        gate = self.values(real_input, ctx)
        return scale_channels(conv_output, gate), gate
