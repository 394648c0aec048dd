"""Attention matching (engine/attention.ts): a spatial map per image from the squared activations of a
transfer point, normalised per image, compared between teacher and student.

paper (Eq. 2): Q = sum_c A^2 divided by its L2 norm; L2 distance per image, mean over the batch, summed over
points. larq zoo: mean_c A^2 divided by its maximum; mean squared difference over batch and space, averaged
over points.
"""

from __future__ import annotations

from typing import Literal

import torch

from .ops import mean_over

AttentionForm = Literal["paper", "larq"]

# Keeps an all-zero map (a dead transfer point) from dividing by zero; far below any real activation energy.
EPSILON = 1e-12


def attention_map(activations: torch.Tensor, form: AttentionForm) -> torch.Tensor:
    """Normalised attention maps [N, H*W] of NCHW activations (index h*W + w, as tfjs's NHWC flattening)."""
    n, _, h, w = activations.shape
    squared = activations.square()
    energy = (squared.sum(dim=1) if form == "paper" else mean_over(squared, (1,))).reshape(n, h * w)
    if form == "paper":
        norm = energy.square().sum(dim=1, keepdim=True).sqrt()
    else:
        # tf.max's gradient goes to every tied maximum, amax's is shared among them; ties have measure zero.
        norm = energy.amax(dim=1, keepdim=True)
    return energy / (norm + EPSILON)


def attention_loss(student: list[torch.Tensor], teacher: list[torch.Tensor], form: AttentionForm) -> torch.Tensor:
    """The (unweighted) attention-matching loss over matched transfer points."""
    if len(student) != len(teacher):
        raise ValueError(f"{len(student)} student points vs {len(teacher)}")
    per_point = []
    for j, (s, t) in enumerate(zip(student, teacher)):
        if s.shape[2:] != t.shape[2:]:
            raise ValueError(f"transfer point {j}: student {list(s.shape)} and teacher {list(t.shape)} differ in space")
        difference = attention_map(s, form) - attention_map(t, form)
        if form == "paper":
            per_point.append((difference.square().sum(dim=1) + EPSILON).sqrt().mean())
        else:
            per_point.append(difference.square().mean())
    stacked = torch.stack(per_point)
    return stacked.sum() if form == "paper" else stacked.mean()
