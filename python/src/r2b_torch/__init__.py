"""r2b_torch: the PyTorch engine of the R2B Workbench (Real-to-Binary networks, Martinez et al., ICLR 2020).

Mirrors the tfjs engine (src/main/engine) module by module; checkpoints of either engine load into the other
without renaming (layout.py documents the one layout mapping). runner.train_run trains a run folder of the
workbench (docs/run-format.md); `python -m r2b_torch` is its command line.

The names below load on first use, so `python -m r2b_torch info` can say that PyTorch is missing instead of
failing to import.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Optimizer": "optimizer",
    "optimizer_for": "optimizer",
    "Checkpoint": "checkpoint",
    "copy_matching_weights": "checkpoint",
    "model_from_checkpoint": "checkpoint",
    "read_checkpoint_dir": "checkpoint",
    "restore_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "write_checkpoint_dir": "checkpoint",
    "RunConfig": "config",
    "StageSpec": "config",
    "parse_run_config": "config",
    "parse_stage_spec": "config",
    "DatasetReader": "data",
    "open_dataset": "data",
    "to_torch": "data",
    "write_dataset": "data",
    "ForwardContext": "layers",
    "apply_bn_updates": "layers",
    "forward_context": "layers",
    "TRANSFER_POINTS": "models",
    "ForwardResult": "models",
    "ModelBuild": "models",
    "ResNet18": "models",
    "model_build": "models",
    "schedule_multiplier": "schedule",
    "StopSignal": "stage",
    "build_stage": "stage",
    "evaluate": "stage",
    "run_stage": "stage",
    "stage_gradients": "stage",
    "train_step": "stage",
    "uses_teacher": "stage",
    "Resume": "pipeline",
    "run_pipeline": "pipeline",
    "RunFolder": "runfolder",
    "RunFolderError": "runfolder",
    "create_run": "runfolder",
    "TrainingLock": "lock",
    "RunOutcome": "runner",
    "TrainingFailed": "runner",
    "TrainingRefused": "runner",
    "train_run": "runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'r2b_torch' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
