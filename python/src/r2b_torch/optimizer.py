"""The stage optimisers, exactly as engine/optimizer.ts applies them: Adam with decoupled weight decay (AdamW)
and SGD with momentum.

Per step t, for each parameter with gradient g (zero where the loss does not reach it), with eta_t the schedule
multiplier and lr_t = lr * eta_t, the update u of the optimiser's kind:

    adamw:  m <- beta1 m + (1 - beta1) g
            v <- beta2 v + (1 - beta2) g^2
            u = (m / (sqrt(v) + eps)) * (lr_t * sqrt(1 - beta2^t) / (1 - beta1^t))
    sgd:    v <- mu v + g                            (the velocity)
            u = lr_t * v

and then, for both:

    next <- theta - u
    next <- next - (lambda * eta_t) * theta          (decayed tensors, when lambda > 0)
    next <- clip(next, -1, 1)                        (latent binary kernels, when clipping)

The decay uses the weights before this step's update and follows the schedule (TF Addons' AdamW convention,
method.md 6b), not PyTorch AdamW's lambda*lr*theta; Adam's epsilon is Keras's 1e-7 and sits outside the bias
correction, as in tfjs's Adam. SGD is PyTorch's form (torch.optim.SGD without dampening or Nesterov), not
Keras's v <- mu v - lr_t g, theta <- theta + v: the velocity is a plain sum of gradients, independent of the
schedule, so a change of rate acts at once and a checkpointed velocity means the same under any rate; with
mu = 0 both are theta <- theta - lr_t g, Keras's SGD with its default momentum. The tfjs engine updates flat
buckets of parameters for speed; the arithmetic is element-wise, so the flat buffers here give the same
values. The state (SLOTS) is kept in this package's layout and converted with its parameter's layout tag.

The optimiser owns the parameters' storage (see Optimizer): build it after the model is on its device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import OptimizerSpec

SLOTS: dict[str, tuple[str, ...]] = {"adamw": ("m", "v"), "sgd": ("velocity",)}
"""Per kind, the state kept for each parameter, in checkpoint order: a checkpoint's `optimizer` group holds
`<slot>/<name>` for every slot and parameter (shared/checkpoint.ts OPTIMIZER_SLOTS)."""


@dataclass
class OptimizerParam:
    name: str
    tensor: torch.nn.Parameter
    decay: bool
    clip: bool


class Optimizer:
    """The optimiser over flat buffers: the parameters become views into one contiguous buffer (clipped tensors
    first, then decayed ones, so each rule covers one slice), and the state (one buffer per slot) and the
    scratch space are flat too. A step is then a dozen in-place kernels over the whole model, with nothing
    allocated: the per-tensor form allocated a dozen temporaries per tensor per step, which cost more than the
    arithmetic. The element-wise operations and their order are the module docstring's, so the roundings are
    the same."""

    def __init__(self, spec: OptimizerSpec, params: list[OptimizerParam]) -> None:
        if spec.kind not in SLOTS:
            raise ValueError(f"optimizer kind {spec.kind!r} is not one of {', '.join(SLOTS)}")
        self.spec = spec
        self.slots = SLOTS[spec.kind]
        """The state slots of this kind, in checkpoint order."""
        self._update = self._adamw if spec.kind == "adamw" else self._sgd
        rank = {(True, False): 0, (True, True): 1, (False, True): 2, (False, False): 3}
        self._order = list(params)  # the caller's order: checkpoints list the state in it
        self.params = sorted(params, key=lambda p: rank[(p.clip, p.decay)])
        self.step = 0
        """Optimiser steps taken."""
        sizes = [p.tensor.numel() for p in self.params]
        total = sum(sizes)
        like = self.params[0].tensor if self.params else torch.zeros(())
        self._flat = torch.empty(total, dtype=torch.float32, device=like.device)
        self._state = [torch.zeros_like(self._flat) for _ in self.slots]
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

    def _adamw(self, g: torch.Tensor, t: torch.Tensor, lr: float) -> None:
        """Adam's update into t (g is clobbered)."""
        s = self.spec
        m, v = self._state
        # In doubles, as JS computes it; tfjs then multiplies by it as a float32 scalar, as torch does.
        correction = math.sqrt(1 - s.beta2**self.step) / (1 - s.beta1**self.step)
        torch.mul(g, g, out=t)  # g^2
        g.mul_(1 - s.beta1)
        m.mul_(s.beta1).add_(g)  # m <- beta1 m + (1 - beta1) g
        t.mul_(1 - s.beta2)
        v.mul_(s.beta2).add_(t)  # v <- beta2 v + (1 - beta2) g^2
        torch.sqrt(v, out=t)
        t.add_(s.epsilon)
        torch.div(m, t, out=t)
        t.mul_(lr * correction)

    def _sgd(self, g: torch.Tensor, t: torch.Tensor, lr: float) -> None:
        """SGD's update into t."""
        (velocity,) = self._state
        velocity.mul_(self.spec.momentum).add_(g)  # v <- mu v + g
        torch.mul(velocity, lr, out=t)

    @torch.no_grad()
    def apply(self, grads: dict[str, torch.Tensor | None], multiplier: float) -> None:
        """One update from gradients keyed by tfjs local name (this package's layout); `multiplier` is the
        schedule's factor on the base learning rate."""
        self._check_storage()
        self.step += 1
        s = self.spec
        parts = []
        for p in self.params:
            g = grads.get(p.name)
            if g is None:
                g = self._zeros.get(p.name)
                if g is None:
                    g = self._zeros[p.name] = torch.zeros_like(p.tensor)
            parts.append(g.reshape(-1))
        g = torch.cat(parts, out=self._grad) if parts else self._grad
        theta, t = self._flat, self._scratch
        self._update(g, t, s.learning_rate * multiplier)  # t: the update
        decay = s.weight_decay > 0 and self._decay.stop > self._decay.start
        if decay:
            torch.mul(theta[self._decay], s.weight_decay * multiplier, out=g[self._decay])  # of the old weights
        theta.sub_(t)
        if decay:
            theta[self._decay].sub_(g[self._decay])
        if self._clip.stop > 0:
            theta[self._clip].clamp_(-1.0, 1.0)

    def state(self) -> dict[str, dict[str, torch.Tensor]]:
        """The state per slot, then per parameter name (this package's layout), both in checkpoint order: views
        into the optimiser's buffers."""
        out: dict[str, dict[str, torch.Tensor]] = {}
        for slot, buffer in zip(self.slots, self._state):
            out[slot] = {}
            for p in self._order:
                offset, size = self._views[p.name]
                out[slot][p.name] = buffer[offset : offset + size].view(p.tensor.shape)
        return out

    @torch.no_grad()
    def set_state(self, state: dict[str, dict[str, torch.Tensor]], step: int) -> None:
        """Restores the state (per slot and parameter name, shaped as the parameters) and the step count."""
        current = self.state()
        for slot in self.slots:
            for p in self.params:
                value = state[slot][p.name]
                if value.shape != p.tensor.shape:
                    raise ValueError(f"{slot}/{p.name}: {list(value.shape)} vs parameter {list(p.tensor.shape)}")
                current[slot][p.name].copy_(value)
        self.step = step


def optimizer_for(model, spec: OptimizerSpec, latent_clip: bool) -> Optimizer:
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
    return Optimizer(spec, params)
