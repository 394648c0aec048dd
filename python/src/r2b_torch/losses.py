"""Cross-entropy on labels and logit matching (Hinton's knowledge distillation), as engine/losses.ts."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy against target distributions [N, K] (one-hot or mixed), with optional label smoothing
    targets * (1 - eps) + eps / K."""
    classes = logits.shape[1]
    if label_smoothing > 0:
        targets = targets * (1 - label_smoothing) + label_smoothing / classes
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """T^2 * KL(softmax(t/T) || softmax(s/T)), averaged over the batch (the caller applies the weight)."""
    log_t = F.log_softmax(teacher / temperature, dim=1)
    log_s = F.log_softmax(student / temperature, dim=1)
    kl = (log_t.exp() * (log_t - log_s)).sum(dim=1)
    return kl.mean() * (temperature * temperature)


def top_k_hits(logits: torch.Tensor, targets: torch.Tensor, k: int = 5) -> torch.Tensor:
    """[top-1 hits, top-k hits] as a float tensor on the logits' device (no host sync)."""
    labels = targets.argmax(dim=1)
    kk = min(k, logits.shape[1])
    hits = logits.topk(kk, dim=1).indices == labels[:, None]
    return torch.stack([hits[:, 0].sum(), hits.sum()]).to(logits.dtype)


def top_k_correct(logits: torch.Tensor, targets: torch.Tensor, k: int = 5) -> tuple[int, int]:
    """Rows whose target class (argmax of the targets) is the top-1 logit, and within the top-k."""
    top1, topk = top_k_hits(logits, targets, k).tolist()
    return int(top1), int(topk)
