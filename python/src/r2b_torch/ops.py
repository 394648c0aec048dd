"""Small autograd functions where PyTorch's generic backward is slow on CPU, each computing exactly what the
composition it replaces computes (the same values, so the same roundings).

- `mean_over`: MeanBackward materialises grad.expand(shape) / count, a division over the full-size expanded
  tensor (~15x a plain pass); dividing the reduced gradient first and expanding it as a view gives the same
  values for a fraction of the time. Used by the gates' pooling and the attention maps' channel mean.
- `scale_channels`: y = x * s[:, :, None, None] (the gate), the scale's gradient a plain sum over space rather
  than a broadcast reduction.
"""

from __future__ import annotations

import torch


class _MeanOver(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:  # type: ignore[override]
        ctx.shape = x.shape
        ctx.channels_last = (
            x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        )
        ctx.dims = dims
        ctx.count = 1
        for d in dims:
            ctx.count *= x.shape[d]
        return x.mean(dim=dims)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        shape = list(ctx.shape)
        for d in ctx.dims:
            shape[d] = 1
        spread = (grad / ctx.count).reshape(shape).expand(ctx.shape)
        if ctx.channels_last:
            # Materialised in the input's layout: a stride-0 or NCHW gradient meeting NHWC ones downstream
            # sends every later element-wise op of the backward pass down PyTorch's slow mixed-stride loops.
            spread = spread.contiguous(memory_format=torch.channels_last)
        return spread, None


def mean_over(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """x.mean(dim=dims) (dims non-negative and sorted), with a cheap backward."""
    return _MeanOver.apply(x, dims)


class _ScaleChannels(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, scale)
        return x * scale[:, :, None, None]

    @staticmethod
    def backward(ctx, dy: torch.Tensor):  # type: ignore[override]
        x, scale = ctx.saved_tensors
        dx = dy * scale[:, :, None, None] if ctx.needs_input_grad[0] else None
        ds = None
        if ctx.needs_input_grad[1]:
            n, c = scale.shape
            ds = (dy * x).sum(dim=(2, 3))
        return dx, ds


def scale_channels(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x [N, C, H, W] times scale [N, C] per image and channel."""
    return _ScaleChannels.apply(x, scale)
