"""A short training run learns: a tiny synthetic dataset in the store format, read through the store reader,
a real teacher trained with the stage step, then a gated binary student distilled from it (attention + KD),
then evaluated. Fixed seeds throughout, so the run is the same every time."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from r2b_torch.config import parse_run_config
from r2b_torch.data import open_dataset, to_torch, write_dataset
from r2b_torch.rng import mix_seed
from r2b_torch.schedule import schedule_multiplier
from r2b_torch.stage import build_stage, evaluate, flip_ratios, sign_snapshot, steps_per_epoch, train_step

SIZE = 16
CLASSES = 4


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class k: a bright 6x6 square in quadrant k over noise, shifted by up to 2 pixels."""
    random = np.random.default_rng(seed)
    labels = np.arange(n) % CLASSES
    images = random.integers(0, 90, size=(n, SIZE, SIZE, 1)).astype(np.int64)
    for i, k in enumerate(labels):
        y, x = 2 + (k // 2) * 8 + random.integers(-1, 2), 2 + (k % 2) * 8 + random.integers(-1, 2)
        images[i, y : y + 6, x : x + 6, 0] += 140
    return np.clip(images, 0, 255).astype(np.uint8), labels


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    home = tmp_path_factory.mktemp("store")
    write_dataset(home, "synthetic", synthetic(160, 1), synthetic(64, 2), [f"quadrant-{k}" for k in range(CLASSES)])
    return open_dataset("synthetic", home)


CONFIG = {
    "seed": 5,
    "data": {"dataset": "synthetic", "inputSize": SIZE, "channels": 1, "classes": CLASSES},
    "model": {"width": 0.125, "bnMomentum": 0.9},
    "stages": [
        {
            "name": "teacher",
            "student": {"architecture": "resnet", "activation": "identity", "weights": "real", "scaling": "none"},
            "optimizer": {"learningRate": 3e-3, "weightDecay": 1e-5},
            "schedule": {"kind": "cosine", "warmupEpochs": 0.5},
            "augment": {"flip": False, "cropPadding": 1},
            "epochs": 3,
            "batchSize": 16,
        },
        {
            "name": "ban",
            "student": {"architecture": "binary", "activation": "sign", "weights": "real", "scaling": "gate"},
            "teacher": "stage:teacher",
            "losses": {"attention": {"weight": 30}, "distillation": {"weight": 3}},
            "optimizer": {"learningRate": 3e-3, "weightDecay": 1e-5},
            "schedule": {"kind": "constant"},
            "epochs": 3,
            "batchSize": 16,
        },
    ],
}


def train(stage, config, index, reader):
    spec = stage.spec
    per_epoch = steps_per_epoch(spec, reader.train_size)
    losses = []
    for epoch in range(spec.epochs):
        for step, batch in enumerate(
            reader.train_batches(spec.batch_size, epoch, seed=mix_seed(config.seed, index), augment=spec.augment)
        ):
            images, labels = to_torch(batch)
            multiplier = schedule_multiplier(spec.schedule, epoch + step / per_epoch, spec.epochs)
            result = train_step(stage.student, stage.optimizer, spec, images, labels, multiplier, stage.teacher)
            losses.append(result.loss)
    return losses


def test_teacher_then_binary_student_learn(store):
    torch.manual_seed(0)
    config = parse_run_config(CONFIG)
    teacher = build_stage(config, 0)
    losses = train(teacher, config, 0, store)
    first, last = np.mean([step.total for step in losses[:5]]), np.mean([step.total for step in losses[-5:]])
    print(f"\nteacher: loss {first:.3f} -> {last:.3f} over {len(losses)} steps")
    assert len(losses) == 3 * (160 // 16)
    assert last < 0.6 * first
    result = evaluate(teacher.student, (to_torch(b) for b in store.test_batches(32)))
    print(f"teacher test: top-1 {result.accuracy.top1:.3f}, top-5 {result.accuracy.top5:.3f}")
    assert result.accuracy.top1 > 0.6  # chance is 0.25
    assert result.accuracy.top5 == 1.0  # 4 classes

    student = build_stage(config, 1, teacher=teacher.student)
    before = sign_snapshot(student.student)
    losses = train(student, config, 1, store)
    parts = {k: [getattr(step, k) for step in losses] for k in ("cross_entropy", "attention", "distillation", "total")}
    for k, values in parts.items():
        print(f"student {k}: {np.mean(values[:5]):.4f} -> {np.mean(values[-5:]):.4f}")
    assert np.mean(parts["total"][-5:]) < 0.7 * np.mean(parts["total"][:5])
    assert np.mean(parts["attention"][-5:]) < np.mean(parts["attention"][:5])
    assert all(step.attention > 0 and step.distillation > 0 for step in losses)
    flips = flip_ratios(student.student, before)
    assert len(flips) == 16 and all(0 < r < 0.5 for r in flips.values())  # latent weights move, signs flip
    result = evaluate(student.student, (to_torch(b) for b in store.test_batches(32)), gate_subset=40)
    print(f"student test: top-1 {result.accuracy.top1:.3f}; gate means over {result.gate_images} images")
    assert result.accuracy.top1 > 0.5
    assert result.gate_images == 64 and len(result.gate_means) == 16  # whole batches of 32, as stage.ts
    assert all(((g > 0) & (g < 1)).all() for g in result.gate_means.values())
