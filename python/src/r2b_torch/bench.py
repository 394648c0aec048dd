"""Timing of one training step: the engine's real ResNet-18 (the teacher stage), each R2B stage kind (tanh,
ban, bnn, each with its teacher), and, for reference, a plain PyTorch ResNet-18 step written without any of
the engine's machinery (torchvision-style BasicBlock, CIFAR stem, nn.BatchNorm2d, torch.optim.Adam).

The kinds are measured interleaved, a few steps of each in turn, so a machine whose speed drifts (other
load, turbo, thermal limits) slows all of them alike and the ratios stay meaningful; each figure is the
median over its steps. Inputs are one fixed random batch (seeded), labels one-hot.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import parse_run_config
from .stage import build_stage, train_step

KINDS = ("teacher", "tanh", "ban", "bnn")


class PlainBasicBlock(nn.Module):
    """torchvision's BasicBlock: conv3x3 -> BN -> ReLU -> conv3x3 -> BN, + shortcut (1x1/2 conv + BN), ReLU."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + identity)


class PlainResNet18(nn.Module):
    """ResNet-18 with the CIFAR stem (3x3/1 conv, BN, ReLU, no max pool), widths 64..512 x width."""

    def __init__(self, width: float, channels: int, classes: int) -> None:
        super().__init__()
        widths = [max(1, math.floor(c * width + 0.5)) for c in (64, 128, 256, 512)]
        self.conv1 = nn.Conv2d(channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers = []
        cin = widths[0]
        for i, cout in enumerate(widths):
            layers += [PlainBasicBlock(cin, cout, 1 if i == 0 else 2), PlainBasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def bench_config(width: float, batch: int, input_size: int, channels: int, classes: int = 10):
    """The r2b pipeline's four stages (as the quick preset resolves them) at the given shapes."""
    teacher = {"architecture": "resnet", "activation": "identity", "weights": "real", "scaling": "none"}
    kd = {"attention": {"weight": 30}, "distillation": {"weight": 3}}

    def stage(name, student, teacher_ref="none", init="none", losses=None, lr=2e-3, wd=1e-5):
        return {
            "name": name,
            "student": student,
            "teacher": teacher_ref,
            "init": init,
            "losses": losses or {},
            "optimizer": {"learningRate": lr, "weightDecay": wd},
            "schedule": {"kind": "cosine", "warmupEpochs": 0.1},
            "batchSize": batch,
        }

    return parse_run_config(
        {
            "data": {"inputSize": input_size, "channels": channels, "classes": classes},
            "model": {"width": width, "bnMomentum": 0.9},
            "stages": [
                stage("teacher", teacher),
                stage("tanh", {"activation": "tanh", "weights": "real"}, "stage:teacher", losses=kd),
                stage("ban", {"activation": "sign", "weights": "real"}, "stage:tanh", losses=kd),
                stage(
                    "bnn",
                    {"activation": "sign", "weights": "sign"},
                    "stage:ban",
                    "stage:ban",
                    {"distillation": {"weight": 0.8}},
                    lr=3e-3,
                    wd=0,
                ),
            ],
        }
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def bench_step(
    width: float,
    batch: int,
    input_size: int = 28,
    channels: int = 1,
    classes: int = 10,
    steps: int = 10,
    plain: bool = False,
    device: torch.device | str = "cpu",
    warmup: int = 3,
    block: int = 2,
    kinds: tuple[str, ...] = KINDS,
) -> dict[str, Any]:
    """Median milliseconds per training step of each kind (and of the plain ResNet-18), with the ratios the
    product's targets are stated in: engine teacher / plain, and each stage / engine teacher."""
    device = torch.device(device)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, channels, input_size, input_size, generator=generator).to(device)
    labels = F.one_hot(torch.randint(0, classes, (batch,), generator=generator), classes).float().to(device)
    config = bench_config(width, batch, input_size, channels, classes)

    runners: dict[str, Any] = {}
    previous = None
    for index, name in enumerate(KINDS):
        stage = build_stage(config, index, teacher=previous, init=previous if name == "bnn" else None, device=device)
        previous = stage.student
        if name in kinds:

            def run(stage=stage) -> float:
                return train_step(stage.student, stage.optimizer, stage.spec, images, labels, 1.0, stage.teacher)

            runners[name] = run
    if plain:
        torch.manual_seed(0)
        model = PlainResNet18(width, channels, classes).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        targets = labels.argmax(dim=1)

        def run_plain() -> float:
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(images), targets)
            loss.backward()
            optimizer.step()
            return float(loss.detach())

        runners["plain"] = run_plain

    for run in runners.values():
        for _ in range(warmup):
            run()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in runners}
    done = 0
    while done < steps:
        n = min(block, steps - done)
        for name, run in runners.items():
            for _ in range(n):
                started = time.perf_counter()
                run()
                _sync(device)
                times[name].append((time.perf_counter() - started) * 1000)
        done += n

    def summary(values: list[float]) -> dict[str, float]:
        median = statistics.median(values)
        return {
            "medianMs": round(median, 3),
            "minMs": round(min(values), 3),
            "meanMs": round(statistics.fmean(values), 3),
            "imagesPerSecond": round(batch * 1000 / median, 1),
        }

    timings = {name: summary(values) for name, values in times.items()}
    ratios: dict[str, float] = {}
    if "teacher" in timings and "plain" in timings:
        ratios["teacher/plain"] = round(timings["teacher"]["medianMs"] / timings["plain"]["medianMs"], 3)
    for name in ("tanh", "ban", "bnn"):
        if name in timings and "teacher" in timings:
            ratios[f"{name}/teacher"] = round(timings[name]["medianMs"] / timings["teacher"]["medianMs"], 3)
    return {
        "device": str(device),
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "cpuCount": os.cpu_count(),
        "torch": torch.__version__,
        "width": width,
        "batch": batch,
        "input": input_size,
        "channels": channels,
        "classes": classes,
        "steps": steps,
        "timings": timings,
        "ratios": ratios,
        "targets": {"teacher/plain": 1.15, "stage/teacher": 1.4},
    }
