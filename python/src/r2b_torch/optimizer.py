"""Adam with decoupled weight decay, exactly as engine/optimizer.ts applies it.

Per step t, for each parameter with gradient g (zero where the loss does not reach it):

    m <- beta1 m + (1 - beta1) g
    v <- beta2 v + (1 - beta2) g^2
    next <- theta - (m / (sqrt(v) + eps)) * (lr_t * sqrt(1 - beta2^t) / (1 - beta1^t))
    next <- next - (lambda * eta_t) * theta          (decayed tensors, when lambda > 0)
    next <- clip(next, -1, 1)                        (latent binary kernels, when clipping)

with eta_t the schedule multiplier and lr_t = lr * eta_t. The decay uses the weights before this step's
update and follows the schedule (TF Addons' AdamW convention, method.md 6b), not PyTorch AdamW's lambda*lr*theta;
epsilon is Keras's 1e-7 and sits outside the bias correction, as in tfjs's Adam. The tfjs engine updates
flat buckets of parameters for speed; the arithmetic is element-wise, so per-tensor updates here give the same
values. Moments are kept in this package's layout and converted with their parameter's layout tag.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import OptimizerSpec


@dataclass
class OptimizerParam:
    name: str
    tensor: torch.nn.Parameter
    decay: bool
    clip: bool


class AdamW:
    def __init__(self, spec: OptimizerSpec, params: list[OptimizerParam]) -> None:
        self.spec = spec
        self.params = params
        self.step = 0
        """Optimiser steps taken."""
        self._decayed = [i for i, p in enumerate(params) if p.decay]
        self._clipped = [i for i, p in enumerate(params) if p.clip]
        self.m = {p.name: torch.zeros_like(p.tensor, memory_format=torch.contiguous_format) for p in params}
        self.v = {p.name: torch.zeros_like(p.tensor, memory_format=torch.contiguous_format) for p in params}

    @torch.no_grad()
    def apply(self, grads: dict[str, torch.Tensor | None], multiplier: float) -> None:
        """One update from gradients keyed by tfjs local name (this package's layout); `multiplier` is the
        schedule's factor on the base learning rate.

        The per-tensor arithmetic of the module docstring, op for op (so the same roundings), issued as
        torch._foreach_* calls over all tensors at once: a step costs a dozen dispatches, not ten per tensor."""
        self.step += 1
        s = self.spec
        lr = s.learning_rate * multiplier
        # In doubles, as JS computes it; tfjs then multiplies by it as a float32 scalar, as torch does.
        correction = math.sqrt(1 - s.beta2**self.step) / (1 - s.beta1**self.step)
        names = [p.name for p in self.params]
        thetas = [p.tensor for p in self.params]
        g = [grads.get(n) for n in names]
        g = [x if x is not None else torch.zeros_like(t) for x, t in zip(g, thetas)]
        f = torch
        m = f._foreach_add(f._foreach_mul([self.m[n] for n in names], s.beta1), f._foreach_mul(g, 1 - s.beta1))
        squares = f._foreach_mul(g, g)
        v = f._foreach_add(f._foreach_mul([self.v[n] for n in names], s.beta2), f._foreach_mul(squares, 1 - s.beta2))
        for n, mi, vi in zip(names, m, v):
            self.m[n] = mi
            self.v[n] = vi
        denominators = f._foreach_add(f._foreach_sqrt(v), s.epsilon)
        updates = f._foreach_mul(f._foreach_div(m, denominators), lr * correction)
        nxt = f._foreach_sub(thetas, updates)
        if s.weight_decay > 0 and self._decayed:
            decayed = [nxt[i] for i in self._decayed]
            f._foreach_sub_(decayed, f._foreach_mul([thetas[i] for i in self._decayed], s.weight_decay * multiplier))
        if self._clipped:
            clipped = [nxt[i] for i in self._clipped]
            f._foreach_clamp_min_(clipped, -1.0)
            f._foreach_clamp_max_(clipped, 1.0)
        f._foreach_copy_(thetas, nxt)

    def moments(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """First and second moments per parameter name (this package's layout)."""
        return {p.name: (self.m[p.name], self.v[p.name]) for p in self.params}

    @torch.no_grad()
    def set_moments(self, moments: dict[str, tuple[torch.Tensor, torch.Tensor]], step: int) -> None:
        """Restores the moments (shaped as the parameters) and the step count."""
        for p in self.params:
            m, v = moments[p.name]
            if m.shape != p.tensor.shape or v.shape != p.tensor.shape:
                raise ValueError(f"moments of {p.name}: {list(m.shape)} vs parameter {list(p.tensor.shape)}")
            self.m[p.name] = m.to(p.tensor).clone()
            self.v[p.name] = v.to(p.tensor).clone()
        self.step = step


def optimizer_for(model, spec: OptimizerSpec, latent_clip: bool) -> AdamW:
    """The stage optimiser of a model (StageTrainer's): every trainable tensor, weight decay on the kernels,
    clipping of the latent binary kernels when `latent_clip`."""
    store = model.store
    params = [
        OptimizerParam(
            name=name,
            tensor=entry.tensor,
            decay=name in store.decayed,
            clip=latent_clip and name in store.binary_kernels,
        )
        for name, entry in store.weights.items()
    ]
    return AdamW(spec, params)
