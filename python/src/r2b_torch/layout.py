"""The one place where the two engines' tensor layouts meet.

Inside this package tensors use PyTorch's conventions; checkpoints, gradients keyed by name and every value
compared with the tfjs engine use tfjs's. Each stored tensor carries one of three layout tags:

    tag     PyTorch (internal)        tfjs (checkpoints, ParamStore)     to_tf             from_tf
    conv    [out, in, kh, kw]         [kh, kw, in, out]                  permute(2,3,1,0)  permute(3,2,0,1)
    dense   [out, in] (Linear)        [in, out]                          transpose         transpose
    plain   as tfjs                   vectors [C]; learned scale         identity          identity
                                      factors [H,1,1], [1,W,1], [1,1,C]

Activations are NCHW here and NHWC in tfjs (`nhwc` / `nchw`). Attention maps are [N, H*W] with the spatial
index h*W + w in both engines (row-major over (h, w)), and gate values are [N, C] in both, so neither needs
converting. Optimiser moments have the layout of their parameter.
"""

from __future__ import annotations

import torch

CONV = "conv"
DENSE = "dense"
PLAIN = "plain"
LAYOUTS = (CONV, DENSE, PLAIN)


def to_tf(tensor: torch.Tensor, layout: str) -> torch.Tensor:
    """A tensor of this package's layout in tfjs's layout (a view; call .contiguous() before raw export)."""
    if layout == CONV:
        return tensor.permute(2, 3, 1, 0)
    if layout == DENSE:
        return tensor.t()
    if layout == PLAIN:
        return tensor
    raise ValueError(f"unknown layout {layout!r}")


def from_tf(tensor: torch.Tensor, layout: str) -> torch.Tensor:
    """A tensor in tfjs's layout in this package's layout."""
    if layout == CONV:
        return tensor.permute(3, 2, 0, 1)
    if layout == DENSE:
        return tensor.t()
    if layout == PLAIN:
        return tensor
    raise ValueError(f"unknown layout {layout!r}")


def tf_shape(shape: tuple[int, ...] | torch.Size, layout: str) -> list[int]:
    """The tfjs shape of a tensor of this package's shape."""
    shape = list(shape)
    if layout == CONV:
        out, cin, kh, kw = shape
        return [kh, kw, cin, out]
    if layout == DENSE:
        out, cin = shape
        return [cin, out]
    return shape


def nhwc(x: torch.Tensor) -> torch.Tensor:
    """NCHW activations in tfjs's NHWC."""
    return x.permute(0, 2, 3, 1)


def nchw(x: torch.Tensor) -> torch.Tensor:
    """NHWC activations (tfjs, the dataset store) in NCHW."""
    return x.permute(0, 3, 1, 2)
