"""TensorFlow's 'same' padding, which PyTorch's symmetric `padding=` cannot express.

The output is ceil(in / stride); when the total padding is odd the extra row or column goes after (bottom,
right). A 3x3 stride-2 convolution of an even input pads 0 before and 1 after: PyTorch's padding=1 would
shift the sampling grid by one pixel. Every layer here pads explicitly with these amounts.
"""

from __future__ import annotations

import math

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


def avg_pool_same(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """tf.avgPool(x, kernel, stride, 'same'): each window averages over its valid (unpadded) elements only."""
    pads = same_pads(x, kernel, stride)
    if not any(pads):
        return F.avg_pool2d(x, kernel, stride)
    window = kernel * kernel
    total = F.avg_pool2d(F.pad(x, pads), kernel, stride) * window
    ones = torch.ones((1, 1, x.shape[2], x.shape[3]), dtype=x.dtype, device=x.device)
    count = F.avg_pool2d(F.pad(ones, pads), kernel, stride) * window
    return total / count
