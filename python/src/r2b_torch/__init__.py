"""r2b_torch: the PyTorch engine of the R2B Workbench (Real-to-Binary networks, Martinez et al., ICLR 2020).

Mirrors the tfjs engine (src/main/engine) module by module; checkpoints of either engine load into the other
without renaming (layout.py documents the one layout mapping).
"""

from .checkpoint import (
    Checkpoint,
    copy_matching_weights,
    model_from_checkpoint,
    read_checkpoint_dir,
    restore_checkpoint,
    save_checkpoint,
    write_checkpoint_dir,
)
from .config import RunConfig, StageSpec, parse_run_config, parse_stage_spec
from .data import DatasetReader, open_dataset, to_torch, write_dataset
from .layers import ForwardContext, apply_bn_updates, forward_context
from .models import TRANSFER_POINTS, ForwardResult, ModelBuild, ResNet18, model_build
from .optimizer import AdamW, optimizer_for
from .schedule import schedule_multiplier
from .stage import build_stage, evaluate, stage_gradients, train_step, uses_teacher

__all__ = [
    "AdamW",
    "Checkpoint",
    "DatasetReader",
    "ForwardContext",
    "ForwardResult",
    "ModelBuild",
    "ResNet18",
    "RunConfig",
    "StageSpec",
    "TRANSFER_POINTS",
    "apply_bn_updates",
    "build_stage",
    "copy_matching_weights",
    "evaluate",
    "forward_context",
    "model_build",
    "model_from_checkpoint",
    "open_dataset",
    "optimizer_for",
    "parse_run_config",
    "parse_stage_spec",
    "read_checkpoint_dir",
    "restore_checkpoint",
    "save_checkpoint",
    "schedule_multiplier",
    "stage_gradients",
    "to_torch",
    "train_step",
    "uses_teacher",
    "write_checkpoint_dir",
    "write_dataset",
]
