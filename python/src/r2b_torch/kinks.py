"""The non-differentiable points of the networks, named, and cross-engine alignment at them.

Two float32 engines compute the same pre-activation value up to rounding (~1e-6 relative here). Where such a
value lies within rounding of a kink (ReLU and PReLU at 0, sign at 0, the straight-through estimator's mask at
|x| = clip) the two engines may take different sides. For values that is harmless (a ReLU is continuous) or
local (a sign flip changes one +-1), but a single element on the other side of a kink moves every gradient
upstream of it by about 1/sqrt(elements): 1e-2 relative on these networks, which makes gradients of two
correct engines (tfjs's own cpu and wasm backends included) disagree.

Every kink site therefore has a name, and a ForwardContext may carry a KinkAligner: at the elements another
engine listed as near a kink, this engine takes that engine's side, and counts where its own side differed
(the flips). Values elsewhere are this engine's own. Without an aligner (training) the sites are plain ops.

Sites (tfjs local names): `stem.relu`; real blocks `block_Na.relu` (after the first BN) and `block_N.relu`
(the block output); binary convolutions `<conv>.sign` and `<conv>.ste` (input binarisation and STE mask);
`<half>.prelu`; `<half>.gate.relu` (the gate's hidden layer). Indices are flat in tfjs's layout (NHWC for
4-D tensors, [N, C] for gate activations).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .quantizers import prelu as fast_prelu

# The band either side of a kink, relative to the tensor's largest magnitude, that counts as "near".
NEAR = 1e-4
# Values this close to a kink (relative, about an ulp of the largest element) are zeros computed as noise.
ZERO = 1e-7


@dataclass
class KinkSite:
    shape: list[int]
    """The tensor's shape in tfjs's layout."""
    index: np.ndarray
    """Flat indices (tfjs layout) of the elements the other engine found near the kink."""
    value: np.ndarray
    """The other engine's values there."""


@dataclass
class KinkAligner:
    sites: dict[str, KinkSite]
    flips: dict[str, int] = field(default_factory=dict)
    """Per site: listed elements where this engine's own side differed from the other engine's."""
    margin: dict[str, float] = field(default_factory=dict)
    """Per site: the largest distance of this engine's own value from the kink at a flip, relative to the
    tensor's largest magnitude (a flip within rounding keeps it below NEAR)."""
    zeros: dict[str, int] = field(default_factory=dict)
    """Per site: flips where both engines' values lie within ZERO of the kink: a quantity that is exactly at
    the kink in exact arithmetic (cancelling terms), computed by each engine as rounding noise."""
    near: dict[str, int] = field(default_factory=dict)
    """Per site: elements listed as near the kink."""
    size: dict[str, int] = field(default_factory=dict)
    """Per site: elements of the tensor."""
    visited: set[str] = field(default_factory=set)

    def decide(self, site: str, x: torch.Tensor, own: torch.Tensor, rule, kink: float = 0.0) -> torch.Tensor:
        """`own` (a bool mask of x's shape) with the listed elements set to rule(other engine's value); `kink`
        is where the decision changes (at |x| = kink for a nonzero kink)."""
        entry = self.sites.get(site)
        if entry is None:
            raise KeyError(f"kink site {site} was not recorded by the other engine")
        self.visited.add(site)
        expected = list(x.shape) if x.dim() == 2 else [x.shape[0], x.shape[2], x.shape[3], x.shape[1]]
        if list(entry.shape) != expected:
            raise ValueError(f"kink site {site}: recorded shape {entry.shape}, tensor {expected} (tfjs layout)")
        self.near[site] = int(entry.index.size)
        self.size[site] = int(x.numel())
        self.flips[site] = 0
        self.margin[site] = 0.0
        self.zeros[site] = 0
        if entry.index.size == 0:
            return own
        coords = np.unravel_index(entry.index.astype(np.int64), entry.shape)
        if x.dim() == 4:
            n, h, w, c = coords
            coords = (n, c, h, w)
        where = tuple(torch.from_numpy(np.asarray(k, dtype=np.int64)) for k in coords)
        theirs = torch.from_numpy(rule(entry.value.astype(np.float32)))
        mask = own.clone()
        flipped = mask[where] != theirs
        self.flips[site] = int(flipped.sum())
        if self.flips[site]:
            scale = float(x.detach().abs().max())
            ours = x.detach()[where][flipped].abs().double()
            others = torch.from_numpy(np.abs(entry.value.astype(np.float64)))[flipped]
            mine = (ours - kink).abs() / scale
            theirs_distance = (others - kink).abs() / scale
            self.margin[site] = float(mine.max())
            self.zeros[site] = int(((mine <= ZERO) & (theirs_distance <= ZERO)).sum())
        mask[where] = theirs
        return mask


def _aligner(ctx) -> KinkAligner | None:
    return getattr(ctx, "align", None)


def relu(x: torch.Tensor, ctx, site: str) -> torch.Tensor:
    aligner = _aligner(ctx)
    if aligner is None:
        return F.relu(x)
    mask = aligner.decide(site, x, x > 0, lambda v: v > 0)
    return torch.where(mask, x, torch.zeros((), dtype=x.dtype))


def prelu(x: torch.Tensor, alpha: torch.Tensor, ctx, site: str) -> torch.Tensor:
    aligner = _aligner(ctx)
    if aligner is None:
        return fast_prelu(x, alpha)
    mask = aligner.decide(site, x, x > 0, lambda v: v > 0)
    return torch.where(mask, x, alpha.view(1, -1, 1, 1) * x)


class _MaskedSign(torch.autograd.Function):
    """Forward +-1 from a given sign mask, backward dy times a given pseudo-gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, positive: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(slope)
        one = torch.ones((), dtype=x.dtype)
        return torch.where(positive, one, -one)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):  # type: ignore[override]
        (slope,) = ctx.saved_tensors
        return dy * slope, None, None


def aligned_sign(x: torch.Tensor, ctx, site: str, kind: str, clip: float) -> torch.Tensor:
    """sign (sign(0) = +1) with its STE (`kind` "sign", mask |x| <= clip) or ApproxSign pseudo-gradient, the
    sign and the mask decided at the named sites."""
    aligner = _aligner(ctx)
    assert aligner is not None
    positive = aligner.decide(f"{site}.sign", x, x >= 0, lambda v: v >= 0)
    magnitude = x.detach().abs()
    if kind == "sign":
        c = np.float32(clip)
        inside = aligner.decide(f"{site}.ste", x, magnitude <= torch.tensor(c), lambda v: np.abs(v) <= c, float(c))
        slope = inside.to(x.dtype)
    else:
        # ApproxSign's pseudo-gradient (2 - 2|x|) 1{|x| <= 1} is continuous at |x| = 1: no site there.
        slope = (2 - 2 * magnitude) * (magnitude <= 1).to(x.dtype)
    return _MaskedSign.apply(x, positive, slope)
