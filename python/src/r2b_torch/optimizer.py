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

The optimiser owns the parameters' storage (see AdamW): build it after the model is on its device.
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
    """AdamW over flat buffers: the parameters become views into one contiguous buffer (clipped tensors first,
    then decayed ones, so each rule covers one slice), and the moments and the scratch space are flat too.
    A step is then a dozen in-place kernels over the whole model, with nothing allocated: the per-tensor form
    allocated a dozen temporaries per tensor per step, which cost more than the arithmetic. The element-wise
    operations and their order are the module docstring's, so the roundings are the same."""

    def __init__(self, spec: OptimizerSpec, params: list[OptimizerParam]) -> None:
        self.spec = spec
        rank = {(True, False): 0, (True, True): 1, (False, True): 2, (False, False): 3}
        self._order = list(params)  # the caller's order: checkpoints list moments in it
        self.params = sorted(params, key=lambda p: rank[(p.clip, p.decay)])
        self.step = 0
        """Optimiser steps taken."""
        sizes = [p.tensor.numel() for p in self.params]
        total = sum(sizes)
        like = self.params[0].tensor if self.params else torch.zeros(())
        self._flat = torch.empty(total, dtype=torch.float32, device=like.device)
        self._m = torch.zeros_like(self._flat)
        self._v = torch.zeros_like(self._flat)
        self._grad = torch.empty_like(self._flat)
        self._scratch = torch.empty_like(self._flat)
        self._views: dict[str, tuple[int, int]] = {}
        offset = 0
        with torch.no_grad():
            for p, size in zip(self.params, sizes):
                view = self._flat[offset : offset + size].view_as(p.tensor)
                view.copy_(p.tensor)
                p.tensor.data = view
                self._views[p.name] = (offset, size)
                offset += size
        self._ptrs = [p.tensor.data_ptr() for p in self.params]
        clipped = sum(size for p, size in zip(self.params, sizes) if p.clip)
        self._clip = slice(0, clipped)
        start = sum(size for p, size in zip(self.params, sizes) if p.clip and not p.decay)
        self._decay = slice(start, start + sum(size for p, size in zip(self.params, sizes) if p.decay))
        self._zeros: dict[str, torch.Tensor] = {}

    def _check_storage(self) -> None:
        if [p.tensor.data_ptr() for p in self.params] != self._ptrs:
            raise RuntimeError("the model's parameters moved (Module.to after the optimiser was built?)")

    @torch.no_grad()
    def apply(self, grads: dict[str, torch.Tensor | None], multiplier: float) -> None:
        """One update from gradients keyed by tfjs local name (this package's layout); `multiplier` is the
        schedule's factor on the base learning rate."""
        self._check_storage()
        self.step += 1
        s = self.spec
        lr = s.learning_rate * multiplier
        # In doubles, as JS computes it; tfjs then multiplies by it as a float32 scalar, as torch does.
        correction = math.sqrt(1 - s.beta2**self.step) / (1 - s.beta1**self.step)
        parts = []
        for p in self.params:
            g = grads.get(p.name)
            if g is None:
                g = self._zeros.get(p.name)
                if g is None:
                    g = self._zeros[p.name] = torch.zeros_like(p.tensor)
            parts.append(g.reshape(-1))
        g = torch.cat(parts, out=self._grad) if parts else self._grad
        theta, m, v, t = self._flat, self._m, self._v, self._scratch
        torch.mul(g, g, out=t)  # g^2
        g.mul_(1 - s.beta1)
        m.mul_(s.beta1).add_(g)  # m <- beta1 m + (1 - beta1) g
        t.mul_(1 - s.beta2)
        v.mul_(s.beta2).add_(t)  # v <- beta2 v + (1 - beta2) g^2
        torch.sqrt(v, out=t)
        t.add_(s.epsilon)
        torch.div(m, t, out=t)
        t.mul_(lr * correction)  # the update
        decay = s.weight_decay > 0 and self._decay.stop > self._decay.start
        if decay:
            torch.mul(theta[self._decay], s.weight_decay * multiplier, out=g[self._decay])  # of the old weights
        theta.sub_(t)
        if decay:
            theta[self._decay].sub_(g[self._decay])
        if self._clip.stop > 0:
            theta[self._clip].clamp_(-1.0, 1.0)

    def moments(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """First and second moments per parameter name (this package's layout), in parameter order."""
        out = {}
        for p in self._order:
            offset, size = self._views[p.name]
            shape = p.tensor.shape
            out[p.name] = (self._m[offset : offset + size].view(shape), self._v[offset : offset + size].view(shape))
        return out

    @torch.no_grad()
    def set_moments(self, moments: dict[str, tuple[torch.Tensor, torch.Tensor]], step: int) -> None:
        """Restores the moments (shaped as the parameters) and the step count."""
        current = self.moments()
        for p in self.params:
            m, v = moments[p.name]
            if m.shape != p.tensor.shape or v.shape != p.tensor.shape:
                raise ValueError(f"moments of {p.name}: {list(m.shape)} vs parameter {list(p.tensor.shape)}")
            current[p.name][0].copy_(m)
            current[p.name][1].copy_(v)
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
