"""Checkpoints in the project's format (engine/checkpoint.ts, runs/run-store.ts).

A checkpoint is a JSON manifest and one little-endian float32 buffer. The manifest lists every tensor as
{name, group, shape, offset}: group `weights` (trainable), `state` (BN moving statistics) or `optimizer`
(`<slot>/<name>` for each slot of optimizer.SLOTS in turn: Adam's moments `m/` then `v/`, SGD's velocity
`velocity/`); names are the tfjs ParamStore's local names, shapes and values in tfjs's layout (layout.py
converts), offsets count float32 elements. `model` is the ModelBuild JSON and
`step` the optimiser's step count. On disk a checkpoint is a folder with `data.bin` and `manifest.json`, the
latter with `sha256` (hex, of data.bin) and `bytes` added; run folders keep them as
`checkpoints/<stage>/e<epochsCompleted>/` (runfolder.py writes those, with the temp-and-rename protocol of
docs/run-format.md).

Manifest versions: 2 (docs/run-format.md, what this engine writes into run folders) counts the epochs done as
`epochsCompleted`; 1 (the tfjs engine before format 2) as `epoch`. Both are read; `epochs_completed` gives
the count of either.

Tensors are written in the tfjs engine's order (weights and state in creation order, then the optimiser's
state), so a model saved by either engine gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import layout as L
from .fsio import fsync_dir, json_text, write_file_synced
from .models import ModelBuild, ResNet18
from .optimizer import Optimizer

MANIFEST_VERSIONS = (1, 2)


def manifest_epochs(manifest: dict[str, Any]) -> int:
    """Epochs completed when a checkpoint was taken: `epochsCompleted` (version 2) or `epoch` (version 1)."""
    key = "epoch" if manifest.get("version") == 1 else "epochsCompleted"
    value = manifest.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"checkpoint manifest (version {manifest.get('version')}) has no valid {key}")
    return value


@dataclass
class Checkpoint:
    manifest: dict[str, Any]
    data: np.ndarray
    """float32, 1-D."""

    def entries(self) -> dict[str, dict[str, Any]]:
        return {f"{t['group']}:{t['name']}": t for t in self.manifest["tensors"]}

    @property
    def epochs_completed(self) -> int:
        return manifest_epochs(self.manifest)

    def array(self, entry: dict[str, Any]) -> np.ndarray:
        """A tensor's values in tfjs layout (a view into the buffer)."""
        size = int(np.prod(entry["shape"], dtype=np.int64))
        offset = entry["offset"]
        if offset + size > self.data.size:
            raise ValueError(f"checkpoint buffer ends before {entry['name']}")
        return self.data[offset : offset + size].reshape(entry["shape"])


def save_checkpoint(
    model: ResNet18,
    stage: str,
    epochs_completed: int,
    step: int = 0,
    optimizer: Optimizer | None = None,
    version: int = 2,
) -> Checkpoint:
    """Weights, BN statistics and (optionally) the optimiser's state of a model. `version` 1 writes the
    format-1 manifest (`epoch`), for comparisons with writers of that format; run folders take version 2."""
    if version not in MANIFEST_VERSIONS:
        raise ValueError(f"checkpoint manifest version {version}")
    arrays: list[np.ndarray] = []
    tensors: list[dict[str, Any]] = []
    offset = 0

    def add(name: str, group: str, tf_value: torch.Tensor) -> None:
        nonlocal offset
        value = tf_value.detach().to("cpu", torch.float32).contiguous().numpy().reshape(-1)
        arrays.append(value)
        tensors.append({"name": name, "group": group, "shape": list(tf_value.shape), "offset": offset})
        offset += value.size

    for group, name, value in model.tf_tensors():
        add(name, group, value)
    if optimizer is not None:
        layouts = {name: entry.layout for name, entry in model.store.weights.items()}
        for slot, per_name in optimizer.state().items():
            for name, value in per_name.items():
                add(f"{slot}/{name}", "optimizer", L.to_tf(value, layouts[name]))
    data = np.concatenate(arrays).astype("<f4") if arrays else np.zeros(0, dtype="<f4")
    manifest = {
        "format": "r2b-checkpoint",
        "version": version,
        "stage": stage,
        ("epoch" if version == 1 else "epochsCompleted"): epochs_completed,
        "step": optimizer.step if optimizer is not None else step,
        "model": model.build.to_json(),
        "tensors": tensors,
    }
    return Checkpoint(manifest, data)


def state_slots(manifest: dict[str, Any]) -> list[str]:
    """The optimiser state slots a checkpoint holds, in their order (shared/checkpoint.ts stateSlots)."""
    slots: list[str] = []
    for t in manifest.get("tensors", []):
        if t["group"] == "optimizer":
            slot = t["name"].split("/", 1)[0]
            if slot not in slots:
                slots.append(slot)
    return slots


def _read(checkpoint: Checkpoint, entries: dict, key: str, tf_shape: list[int]) -> np.ndarray:
    entry = entries.get(key)
    if entry is None:
        raise KeyError(f"checkpoint of stage {checkpoint.manifest.get('stage')} has no {key}")
    if list(entry["shape"]) != list(tf_shape):
        raise ValueError(f"{key}: checkpoint shape {entry['shape']} vs model {tf_shape}")
    return checkpoint.array(entry)


@torch.no_grad()
def restore_checkpoint(model: ResNet18, checkpoint: Checkpoint, optimizer: Optimizer | None = None) -> None:
    """Assigns a checkpoint's weights and BN statistics (and the optimiser's state, given an optimiser) to a
    model built the same way. Every tensor of the model must be present with the same (tfjs) shape, and the
    state must be of the optimiser's kind."""
    if checkpoint.manifest.get("format") != "r2b-checkpoint":
        raise ValueError("not an r2b checkpoint")
    if checkpoint.manifest.get("version") not in MANIFEST_VERSIONS:
        raise ValueError(f"checkpoint manifest version {checkpoint.manifest.get('version')!r} is not 1 or 2")
    entries = checkpoint.entries()
    for name, entry in model.store.entries():
        value = _read(checkpoint, entries, f"{entry.group}:{name}", entry.tf_shape)
        target = entry.tensor
        target.copy_(L.from_tf(torch.from_numpy(np.array(value, dtype=np.float32)), entry.layout))
    if optimizer is not None:
        held = state_slots(checkpoint.manifest)
        if held and held != list(optimizer.slots):
            raise ValueError(
                f"checkpoint of stage {checkpoint.manifest.get('stage')} holds optimiser state {', '.join(held)}, "
                f"not the {optimizer.spec.kind} optimiser's {', '.join(optimizer.slots)}"
            )
        state: dict[str, dict[str, torch.Tensor]] = {}
        for slot in optimizer.slots:
            state[slot] = {}
            for name, entry in model.store.weights.items():
                value = _read(checkpoint, entries, f"optimizer:{slot}/{name}", entry.tf_shape)
                state[slot][name] = L.from_tf(torch.from_numpy(np.array(value, dtype=np.float32)), entry.layout)
        optimizer.set_state(state, int(checkpoint.manifest["step"]))


def model_from_checkpoint(checkpoint: Checkpoint) -> ResNet18:
    """Builds the model a checkpoint describes (its ModelBuild) and loads it."""
    model = ResNet18(ModelBuild.from_json(checkpoint.manifest["model"]))
    restore_checkpoint(model, checkpoint)
    return model


@torch.no_grad()
def copy_matching_weights(source: ResNet18, target: ResNet18) -> list[str]:
    """Initialises `target` from `source` wherever a tensor has the same local name and shape (a fully binary
    student from its sign-activation predecessor). Returns the names that had no counterpart."""
    missing = []
    for group in ("weights", "state"):
        theirs = getattr(source.store, group)
        for name, entry in getattr(target.store, group).items():
            other = theirs.get(name)
            if other is not None and other.tf_shape == entry.tf_shape and other.layout == entry.layout:
                entry.tensor.copy_(other.tensor)
            else:
                missing.append(name)
    return missing


def payload_problems(manifest: dict[str, Any], byte_length: int) -> list[str]:
    """Problems of a payload against its manifest (whole float32 values, every tensor inside), as
    shared/checkpoint.ts payloadProblems; empty when it fits."""
    if byte_length % 4:
        return [f"the payload is {byte_length} bytes, not whole float32 values"]
    floats = byte_length // 4
    problems = []
    for t in manifest.get("tensors", []):
        if t["offset"] + int(np.prod(t["shape"], dtype=np.int64)) > floats:
            problems.append(f"tensor {t['name']} reaches beyond the payload's {floats} values")
    return problems


def write_checkpoint_dir(
    directory: str | Path, checkpoint: Checkpoint, before_rename: Callable[[Path], None] | None = None
) -> dict[str, Any]:
    """Writes `data.bin` and `manifest.json` (with sha256 and bytes) into `<directory>.<hex>.tmp`, each flushed
    to disk, then renames that folder over `directory` (docs/run-format.md, Checkpoints). Returns the manifest
    written."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    data = np.ascontiguousarray(checkpoint.data, dtype="<f4").tobytes()
    digest = hashlib.sha256(data).hexdigest()
    manifest = {**checkpoint.manifest, "sha256": digest, "bytes": len(data)}
    temp = directory.parent / f"{directory.name}.{secrets.token_hex(4)}.tmp"
    temp.mkdir()
    try:
        write_file_synced(temp / "data.bin", data)
        write_file_synced(temp / "manifest.json", json_text(manifest, indent=2) + "\n")
        fsync_dir(temp)
        if before_rename is not None:
            before_rename(temp)
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(temp, directory)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    fsync_dir(directory.parent)
    return manifest


def read_checkpoint_dir(directory: str | Path, sha256: str | None = None, size: int | None = None) -> Checkpoint:
    """Reads a checkpoint folder. data.bin must match the manifest's own `sha256` and `bytes` when present, and
    `sha256` and `size` (the run log's) when given, and hold every tensor the manifest lists; anything else is
    refused with a message that names the folder."""
    directory = Path(directory)
    try:
        raw = (directory / "data.bin").read_bytes()
        text = (directory / "manifest.json").read_text()
    except OSError as error:
        raise ValueError(f"checkpoint {directory} is missing or unreadable ({error.strerror})") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"checkpoint {directory}: manifest.json is not valid JSON (truncated or edited?)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "r2b-checkpoint":
        raise ValueError(f"checkpoint {directory}: manifest.json is not an r2b checkpoint manifest")
    digest = hashlib.sha256(raw).hexdigest()
    for expected in (sha256, manifest.get("sha256")):
        if expected is not None and digest != expected:
            raise ValueError(
                f"checkpoint {directory} is corrupted (checksum mismatch in {directory / 'data.bin'}): "
                "refusing to load it"
            )
    for expected in (size, manifest.get("bytes")):
        if expected is not None and expected != len(raw):
            raise ValueError(f"checkpoint {directory}: data.bin is {len(raw)} bytes, {expected} expected")
    problems = payload_problems(manifest, len(raw))
    if problems:
        raise ValueError(f"checkpoint {directory}: {problems[0]}")
    manifest.pop("sha256", None)
    manifest.pop("bytes", None)
    return Checkpoint(manifest, np.frombuffer(raw, dtype="<f4").copy())
