"""Quantizers, each with its pseudo-gradient beside it (as engine/quantizers.ts and larq's quantizers.py).

torch.sign(0) is 0, like tfjs's: binary activations must be strictly +-1, so sign(0) = +1 here, and the
backward pass is a straight-through estimator written as an autograd.Function.
"""

from __future__ import annotations

from typing import Literal

import torch

ActivationQuantizer = Literal["identity", "tanh", "sign", "approxsign"]
WeightScale = Literal["none", "mean", "learned"]


def _binary(x: torch.Tensor, shifted: bool = False) -> torch.Tensor:
    """sign(x) with sign(0) = sign(-0) = +1, or with `shifted` sign(x) - 1 (0 or -2), as -2 [x < 0]: a
    comparison written straight into a float tensor, then one multiply (and one add). torch.where and
    comparisons into bool tensors are several times slower on CPU."""
    out = torch.lt(x.detach(), 0, out=torch.empty_like(x, dtype=x.dtype)).mul_(-2)
    return out if shifted else out.add_(1)


def sign_plus_one(x: torch.Tensor) -> torch.Tensor:
    """sign with sign(0) = +1 (and sign(-0) = +1, as tfjs's sign(sign(x) + 1/2) gives). Not differentiable."""
    return _binary(x)


class SteSign(torch.autograd.Function):
    """Forward sign(x) with sign(0) = +1; backward dy * 1{|x| <= clip} (larq's ste_sign)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, clip: float, shifted: bool = False) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.clip = clip
        return _binary(x, shifted)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        # The clip as a float32 scalar, as tfjs compares it: float32(1.3) is not the double 1.3.
        clip = torch.tensor(ctx.clip, dtype=x.dtype, device=x.device)
        return dy * x.abs().le_(clip), None, None  # le_ on a float tensor: 1.0 inside the clip, 0.0 outside


class ApproxSign(torch.autograd.Function):
    """Bi-Real Net's ApproxSign: forward sign(x), backward dy * (2 - 2|x|) * 1{|x| <= 1}."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, shifted: bool = False) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return _binary(x, shifted)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        magnitude = x.abs()
        slope = 2 - 2 * magnitude
        return dy * (slope * magnitude.le_(1)), None


class PReLUFunction(torch.autograd.Function):
    """Per-channel PReLU, x > 0 ? x : alpha x, with tfjs's gradient (dy where x > 0, else alpha dy; the slope's
    gradient sum(dy min(x, 0)) over batch and space). PyTorch's own prelu backward kernel is several times
    slower on CPU than these passes; lerp at weights exactly 0 and 1 returns its ends exactly."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, alpha)
        return torch.nn.functional.prelu(x, alpha)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):  # type: ignore[override]
        x, alpha = ctx.saved_tensors
        shape = (1, -1) + (1,) * (x.dim() - 2)
        slope = alpha.view(shape)
        dx = None
        if ctx.needs_input_grad[0]:
            positive = torch.gt(x.detach(), 0, out=torch.empty_like(x))  # 1.0 where x > 0, else 0.0
            dx = torch.lerp(dy * slope, dy, positive)
        dalpha = None
        if ctx.needs_input_grad[1]:
            dims = [0, *range(2, x.dim())]
            dalpha = (dy * x.clamp_max(0)).sum(dim=dims)
        return dx, dalpha


def prelu(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return PReLUFunction.apply(x, alpha)


def ste_sign(x: torch.Tensor, clip: float = 1.0) -> torch.Tensor:
    return SteSign.apply(x, clip, False)


def approx_sign(x: torch.Tensor) -> torch.Tensor:
    return ApproxSign.apply(x, False)


def quantize_activation(
    x: torch.Tensor, kind: ActivationQuantizer, ste_clip: float = 1.0, shifted: bool = False
) -> torch.Tensor:
    """The activation quantizer q(.) of the binary block; `shifted` (binary kinds only) returns q(x) - 1, the
    input of a +1-padded convolution computed with zero padding (layers.QuantConv2d)."""
    if kind == "identity":
        return x
    if kind == "tanh":
        return torch.tanh(x)
    if kind == "sign":
        return SteSign.apply(x, ste_clip, shifted)
    if kind == "approxsign":
        return ApproxSign.apply(x, shifted)
    raise ValueError(f"unknown activation quantizer {kind!r}")


def is_binary_activation(kind: ActivationQuantizer) -> bool:
    """True when the quantizer's output is +-1, i.e. the convolution it feeds is binary on the input side."""
    return kind in ("sign", "approxsign")


def quantize_weights(latent: torch.Tensor, scale: WeightScale, learned: torch.Tensor | None = None) -> torch.Tensor:
    """Binary weights from latent real weights [out, in, kh, kw]: sign with the STE (clip 1), optionally times a
    per-output-channel scale: XNOR-Net's mean |w| over (in, kh, kw), or a learned vector [out]."""
    binary = ste_sign(latent, 1.0)
    if scale == "none":
        return binary
    if scale == "mean":
        return binary * latent.abs().mean(dim=(1, 2, 3), keepdim=True)
    if scale == "learned":
        if learned is None:
            raise ValueError("a learned weight scale needs its variable")
        return binary * learned.view(-1, 1, 1, 1)
    raise ValueError(f"unknown weight scale {scale!r}")
