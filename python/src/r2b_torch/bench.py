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


# --- data-parallel scaling -------------------------------------------------------------------------------


def bench_ddp(args, counts: list[int]) -> dict[str, Any]:
    """Scaling of data-parallel training steps: for each process count K, torchrun K processes of
    `bench-ddp-worker` (on one node) training stage `args.stage` on the same global batch, and reads back
    rank 0's timing. Efficiency = images/s at K / (K * images/s at 1 process); K = 1 is the one-process engine
    (no DDP), measured the same way, so the figure includes everything data parallelism adds."""
    import json
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    source = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)}
    options = [
        *("--width", str(args.width), "--batch", str(args.batch), "--input", str(args.input)),
        *("--channels", str(args.channels), "--classes", str(args.classes), "--steps", str(args.steps)),
        *("--warmup", str(args.warmup), "--stage", args.stage, "--device", args.device),
        *(["--threads", str(args.threads)] if args.threads else []),
        *(["--sync-batchnorm"] if args.sync_batchnorm else []),
    ]
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="r2b-bench-ddp-") as temp:
        for k in counts:
            out = Path(temp) / f"k{k}.json"
            command = [
                sys.executable,
                *("-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc-per-node", str(k)),
                *("-m", "r2b_torch", "bench-ddp-worker", *options, "--out", str(out)),
            ]
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout)
            if done.returncode != 0 or not out.exists():
                why = _worker_error(done.stderr, done.returncode)
                raise RuntimeError(f"bench-ddp with {k} processes failed: {why}")
            runs.append(json.loads(out.read_text()))
    base = next((r["imagesPerSecond"] for r in runs if r["processes"] == 1), None)
    for r in runs:
        r["efficiency"] = round(r["imagesPerSecond"] / (r["processes"] * base), 3) if base else None
    return {
        "device": args.device,
        "backend": "nccl" if args.device.startswith("cuda") else "gloo",
        "cpuCount": os.cpu_count(),
        "torch": torch.__version__,
        "stage": args.stage,
        "width": args.width,
        "batch": args.batch,
        "input": args.input,
        "channels": args.channels,
        "classes": args.classes,
        "steps": args.steps,
        "warmup": args.warmup,
        "syncBatchNorm": bool(args.sync_batchnorm),
        "runs": runs,
    }


def _worker_error(stderr: str, code: int) -> str:
    """The failing process's own error from a torchrun job's stderr (its exception's last line, before
    torchrun's summary), else torchrun's account of which process ended how."""
    import re

    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    own = [
        line
        for line in lines
        if re.match(r"^[\w.]*(Error|Exception|Interrupt)\b", line) and "ChildFailedError" not in line
    ]
    if own:
        return own[0]
    ended = [line for line in lines if line.startswith("exitcode")]
    return "; ".join(ended) or (lines[-1] if lines else f"exit status {code}")


def ddp_table(result: dict[str, Any]) -> str:
    sync = ", SyncBatchNorm" if result["syncBatchNorm"] else ""
    rows = [
        f"stage {result['stage']}, width {result['width']}, global batch {result['batch']} of "
        f"{result['input']}x{result['input']}x{result['channels']}, {result['device']} ({result['backend']}{sync}), "
        f"{result['cpuCount']} CPUs, {result['steps']} timed steps after {result['warmup']}",
        f"{'processes':>9}  {'threads':>7}  {'images/s':>9}  {'step ms':>8}  {'efficiency':>10}",
    ]
    for r in result["runs"]:
        efficiency = f"{r['efficiency']:.2f}" if r["efficiency"] is not None else "-"
        threads = r["threadsPerProcess"] if r["threadsPerProcess"] is not None else "-"
        rows.append(
            f"{r['processes']:>9}  {threads:>7}  {r['imagesPerSecond']:>9.1f}  {r['medianMs']:>8.1f}  {efficiency:>10}"
        )
    rows.append("efficiency = images/s at N / (N x images/s at 1 process)")
    return "\n".join(rows)


def ddp_worker(args) -> int:
    """One process of a bench-ddp measurement (under torchrun): the stage's training steps on this
    process's share of a fixed synthetic global batch, with the per-step control exchange of real training;
    rank 0 writes the timing to `args.out`."""
    import json
    from pathlib import Path

    from .devices import configure, select_process_device
    from .distributed import Group, Replica, Topology, pin_cpu_share

    topology = Topology.from_env()
    rank, world = (topology.rank, topology.world_size) if topology is not None else (0, 1)
    device = select_process_device(args.device, topology.local_rank if topology is not None else 0)
    if device.type == "cpu":
        if topology is not None:
            share = pin_cpu_share(topology)
            configure(device, args.threads or share)
        else:
            configure(device, args.threads)
    group = None
    if topology is not None:
        group = Group(topology, device, args.sync_batchnorm)
        group.start()
        group.attach_device()
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch, args.channels, args.input, args.input, generator=generator)
    labels = F.one_hot(torch.randint(0, args.classes, (args.batch,), generator=generator), args.classes).float()
    share = args.batch // world
    images = images[rank * share : (rank + 1) * share].to(device)
    labels = labels[rank * share : (rank + 1) * share].to(device)
    config = bench_config(args.width, args.batch, args.input, args.channels, args.classes)
    index = KINDS.index(args.stage)
    previous = None
    for i in range(index + 1):
        stage = build_stage(config, i, teacher=previous, init=previous if KINDS[i] == "bnn" else None, device=device)
        previous = stage.student
    replica = Replica(group, stage.student) if group is not None else None

    def step() -> None:
        train_step(stage.student, stage.optimizer, stage.spec, images, labels, 1.0, stage.teacher, replica)
        if group is not None:
            group.control(False, False)

    for _ in range(args.warmup):
        step()
    _sync(device)
    if group is not None:
        group.control(False, False)  # every process starts timing together
    times = []
    started = time.perf_counter()
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    total = time.perf_counter() - started
    if rank == 0:
        median = statistics.median(times)
        Path(args.out).write_text(
            json.dumps(
                {
                    "processes": world,
                    "threadsPerProcess": torch.get_num_threads() if device.type == "cpu" else None,
                    "medianMs": round(median * 1000, 3),
                    "imagesPerSecond": round(args.batch / median, 1),
                    "meanImagesPerSecond": round(args.batch * args.steps / total, 1),
                }
            )
        )
    if group is not None:
        group.gather(None)  # every process leaves together, once rank 0 has written its timing
        group.close()
    return 0
