"""Helpers of the run-folder tests: a tiny dataset in the store format, the quick preset's r2b config as the
workbench resolves it (checked against makeRunConfig by test_runs_conformance), run folders, and the engine
as a subprocess."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from r2b_torch.data import write_dataset
from r2b_torch.runfolder import RunFolder, create_run

SRC = Path(__file__).resolve().parents[1] / "src"
SIZE = 16
CLASSES = 4
DATASET = "tiny"


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class k: a bright 6x6 square in quadrant k over noise, shifted by up to a pixel."""
    random = np.random.default_rng(seed)
    labels = np.arange(n) % CLASSES
    images = random.integers(0, 90, size=(n, SIZE, SIZE, 1)).astype(np.int64)
    for i, k in enumerate(labels):
        y, x = 2 + (k // 2) * 8 + random.integers(-1, 2), 2 + (k % 2) * 8 + random.integers(-1, 2)
        images[i, y : y + 6, x : x + 6, 0] += 140
    return np.clip(images, 0, 255).astype(np.uint8), labels


def tiny_store(home: Path, dataset: str = DATASET) -> Path:
    write_dataset(home, dataset, synthetic(48, 1), synthetic(32, 2), [f"quadrant-{k}" for k in range(CLASSES)])
    return home


# The quick preset's budget and the r2b pipeline (src/shared/run-config.ts), resolved with zod's defaults.
_OPTIMIZER = {"kind": "adamw", "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7}
_NO_AUGMENT = {"flip": False, "cropPadding": 0, "rotationDegrees": 0, "mixupAlpha": 0}


def _losses(attention: float = 0, distillation: float = 0) -> dict[str, Any]:
    return {
        "crossEntropy": {"weight": 1, "labelSmoothing": 0},
        "attention": {"weight": attention, "form": "larq"},
        "distillation": {"weight": distillation, "temperature": 1},
    }


def _stage(name, student, teacher="none", init="none", losses=None, binary_weights=False) -> dict[str, Any]:
    return {
        "name": name,
        "student": student,
        "teacher": teacher,
        "init": init,
        "losses": losses or _losses(),
        "optimizer": {
            **_OPTIMIZER,
            "learningRate": 0.003 if binary_weights else 0.002,
            "weightDecay": 0 if binary_weights else 0.00001,
        },
        "schedule": {"kind": "cosine", "warmupEpochs": 0.1, "milestones": [], "factor": 0.1},
        "augment": dict(_NO_AUGMENT),
        "epochs": 2,
        "stepsPerEpoch": 100,
        "batchSize": 32,
    }


QUICK_R2B: dict[str, Any] = {
    "version": 1,
    "preset": "quick",
    "pipeline": "r2b",
    "seed": 1,
    "data": {"dataset": "fashion-mnist", "inputSize": 28, "channels": 1, "classes": 10, "testLimit": 1000},
    "model": {
        "width": 0.125,
        "stem": "auto",
        "downsample": "real",
        "binaryPadding": "one",
        "steClip": 1,
        "gateReduction": 8,
        "weightScale": "none",
        "latentClip": True,
        "bnMomentum": 0.9,
        "bnEpsilon": 0.001,
        "preluInit": 0,
    },
    "eval": {"probes": 8, "gateSubset": 256, "batchSize": 100},
    "stages": [
        _stage("teacher", {"architecture": "resnet", "activation": "identity", "weights": "real", "scaling": "none"}),
        _stage(
            "tanh",
            {"architecture": "binary", "activation": "tanh", "weights": "real", "scaling": "gate"},
            "stage:teacher",
            losses=_losses(30, 3),
        ),
        _stage(
            "ban",
            {"architecture": "binary", "activation": "sign", "weights": "real", "scaling": "gate"},
            "stage:tanh",
            losses=_losses(30, 3),
        ),
        _stage(
            "bnn",
            {"architecture": "binary", "activation": "sign", "weights": "sign", "scaling": "gate"},
            "stage:ban",
            "stage:ban",
            losses=_losses(0, 0.8),
            binary_weights=True,
        ),
    ],
}


def set_path(config: dict[str, Any], key: str, value: Any) -> None:
    """`--set key=value` on a resolved config (`stages.1.epochs`, `model.width`)."""
    parts = key.split(".")
    target: Any = config
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    last = parts[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value


def tiny_config(**sets: Any) -> dict[str, Any]:
    """The quick r2b chain shrunk to seconds: width 0.0625, 2 epochs of 3 steps of 8 images per stage, on the
    tiny dataset; a crop and flip in the teacher stage and mixup in the tanh stage so augmentation runs too.
    Keyword keys use `__` for dots (stages__1__epochs=1)."""
    config = copy.deepcopy(QUICK_R2B)
    defaults = {
        "data.dataset": DATASET,
        "data.inputSize": SIZE,
        "data.classes": CLASSES,
        "data.testLimit": 24,
        "model.width": 0.0625,
        "eval.probes": 3,
        "eval.gateSubset": 10,
        "eval.batchSize": 8,
        "stages.0.augment.flip": True,
        "stages.0.augment.cropPadding": 2,
        "stages.1.augment.mixupAlpha": 0.2,
    }
    for i in range(4):
        defaults[f"stages.{i}.stepsPerEpoch"] = 3
        defaults[f"stages.{i}.batchSize"] = 8
    for key, value in {**defaults, **{k.replace("__", "."): v for k, v in sets.items()}}.items():
        set_path(config, key, value)
    return config


def new_run(home: Path, config: dict[str, Any], run_id: str = "run-1", runs: str = "runs") -> RunFolder:
    return create_run(home / runs, config, run_id=run_id)


def engine(*args: str, env: dict[str, str] | None = None, timeout: float = 120, **popen) -> subprocess.Popen:
    """`python -m r2b_torch ...` with this checkout's sources, one torch thread."""
    environment = {**os.environ, "PYTHONPATH": str(SRC), "R2B_TORCH_THREADS": "1", **(env or {})}
    environment.pop("R2B_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "r2b_torch", *args],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def run_engine(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> tuple[int, str, str]:
    process = engine(*args, env=env)
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def train_args(home: Path, run_id: str = "run-1", *extra: str, runs: str = "runs") -> list[str]:
    return ["train", "--run-dir", str(home / runs / run_id), "--data-home", str(home), "--threads", "1", *extra]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]
