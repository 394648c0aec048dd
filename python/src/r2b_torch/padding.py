"""TensorFlow's 'same' padding, which PyTorch's symmetric `padding=` cannot express.

The output is ceil(in / stride); when the total padding is odd the extra row or column goes after (bottom,
right). A 3x3 stride-2 convolution of an even input pads 0 before and 1 after: PyTorch's padding=1 would
shift the sampling grid by one pixel. Every layer here pads explicitly with these amounts.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of one spatial axis, as engine/padding.ts computes it."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    before = total // 2
    return before, total - before


def same_pads(x: torch.Tensor, kernel: int, stride: int) -> tuple[int, int, int, int]:
    """F.pad's (left, right, top, bottom) for an NCHW tensor."""
    top, bottom = same_padding(x.shape[2], kernel, stride)
    left, right = same_padding(x.shape[3], kernel, stride)
    return left, right, top, bottom


def max_pool_same(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """tf.maxPool(x, kernel, stride, 'same'): padded positions never win (padded with -inf)."""
    pads = same_pads(x, kernel, stride)
    if any(pads):
        x = F.pad(x, pads, value=float("-inf"))
    return F.max_pool2d(x, kernel, stride)


PoolGradient = Literal["tfjs", "exact"]


def avg_pool_same(x: torch.Tensor, kernel: int, stride: int, gradient: PoolGradient = "tfjs") -> torch.Tensor:
    """tf.avgPool(x, kernel, stride, 'same'): each window averages over its valid (unpadded) elements only.

    Where a window overhangs the input (odd sizes), tfjs 4.22's AvgPoolGrad (cpu and wasm backends alike) is
    not the gradient of its forward: it divides by the full window (kernel^2) where the forward divided by the
    valid count. `gradient="tfjs"` (the default, so both engines train alike) reproduces that; `"exact"` is the
    true gradient. Without overhang the two are the same."""
    pads = same_pads(x, kernel, stride)
    if not any(pads):
        return F.avg_pool2d(x, kernel, stride)
    window = kernel * kernel
    padded = F.avg_pool2d(F.pad(x, pads), kernel, stride)  # divides every window by kernel^2
    ones = torch.ones((1, 1, x.shape[2], x.shape[3]), dtype=x.dtype, device=x.device)
    count = F.avg_pool2d(F.pad(ones, pads), kernel, stride) * window
    exact = padded * window / count
    if gradient == "exact":
        return exact
    # The forward value of `exact`, the gradient of `padded` (1 / kernel^2 to every covered input).
    return padded + (exact - padded).detach()
