"""The run folder, format 2 (docs/run-format.md): what a training engine writes and the workbench reads.

    runs/<id>/run.json                                         RunMeta, replaced atomically
    runs/<id>/events.jsonl                                     log lines, append-only
    runs/<id>/snapshots/index.jsonl                            snapshot index entries, append-only
    runs/<id>/snapshots/<stage>/<kind>-<epochsCompleted>.bin   their float32 payloads
    runs/<id>/checkpoints/<stage>/e<epochsCompleted>/          manifest.json + data.bin (checksummed)
    runs/<id>/stop-request, pause-request                      requests from anyone

Every read validates what it reads and names the file when it refuses; every stored path is derived from the
record's own fields (stage names and run ids are checked against their patterns first), never taken from a
record. Whole files are replaced atomically (fsio.write_atomic); jsonl files are appended to, one complete
line per write; a torn (unterminated, unparsable) last line is dropped on read and any other bad line is
damage. A checkpoint line is the commit point of its epoch, and is flushed to disk with its log.

Format-1 folders (the tfjs engine before this document) are read and migrated record by record on read;
writing to one (a resume) first rewrites its log and snapshot index in format 2 and renames its snapshot
payloads (`<stage>/e<epoch>-<kind>.bin` -> `<stage>/<kind>-<epoch + 1>.bin`), so a folder is never mixed.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import Checkpoint, manifest_epochs, read_checkpoint_dir, write_checkpoint_dir
from .faults import fault_point
from .fsio import append_lines, append_text, json_line, json_text, write_atomic
from .lock import now_iso

FORMAT_VERSION = 2
RUN_FILE = "run.json"
LOG_FILE = "events.jsonl"
SNAPSHOTS = "snapshots"
SNAPSHOT_INDEX = "index.jsonl"
CHECKPOINTS = "checkpoints"
STOP_REQUEST = "stop-request"
PAUSE_REQUEST = "pause-request"

RUN_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
STAGE_NAME = re.compile(r"^[A-Za-z0-9_+-]{1,64}$")
CHECKPOINT_TEMP = re.compile(r"^e\d+\.[0-9a-f]+\.tmp$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
RUN_STATUSES = ("queued", "running", "paused", "interrupted", "finished", "failed", "stopped")
STAGE_STATUSES = ("pending", "running", "finished", "stopped")


class RunFolderError(Exception):
    """A run folder that cannot be read or written as the contract says; the message names the file and
    says what to do, on one line."""


def checkpoint_path(stage: str, epochs_completed: int) -> str:
    """Where a checkpoint lives under `checkpoints/`: derived, so a stored path can never point elsewhere."""
    return f"{stage}/e{epochs_completed}"


def snapshot_file(stage: str, kind: str, epochs_completed: int) -> str:
    """Where a snapshot payload lives under `snapshots/` (format 2)."""
    return f"{stage}/{kind}-{epochs_completed}.bin"


def format1_snapshot_file(stage: str, epoch: int, kind: str) -> str:
    return f"{stage}/e{epoch}-{kind}.bin"


# --- validation -------------------------------------------------------------------------------------------


class _Invalid(ValueError):
    pass


def _need(ok: bool, problem: str) -> None:
    if not ok:
        raise _Invalid(problem)


def _is_int(v: Any, minimum: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _stage_name(record: dict, key: str = "stage") -> str:
    name = record.get(key)
    _need(isinstance(name, str) and STAGE_NAME.match(name) is not None, f"{key}: not a stage name")
    return name


def _int_field(record: dict, key: str, minimum: int = 0) -> int:
    _need(_is_int(record.get(key), minimum), f"{key}: expected an integer >= {minimum}")
    return record[key]


def _loss_value(v: Any, key: str) -> None:
    _need(v is None or _is_number(v), f"{key}: expected a number or null")


def _accuracy(a: Any, key: str) -> None:
    _need(isinstance(a, dict), f"{key}: expected an object")
    for k in ("top1", "top5"):
        _need(_is_number(a.get(k)) and 0 <= a[k] <= 1, f"{key}.{k}: expected a number in [0, 1]")
    _loss_value(a.get("loss"), f"{key}.loss")


def _tensor_ref(ref: Any, key: str) -> None:
    _need(isinstance(ref, dict), f"{key}: expected {{shape, offset}}")
    shape = ref.get("shape")
    _need(isinstance(shape, list) and all(_is_int(d) for d in shape), f"{key}.shape: expected integers")
    _need(_is_int(ref.get("offset")), f"{key}.offset: expected an integer >= 0")


def parse_log_line(record: Any) -> dict[str, Any]:
    """One `events.jsonl` line, validated, format-1 lines migrated to format 2. Raises ValueError."""
    _need(isinstance(record, dict), "not an object")
    kind = record.get("kind")
    if kind == "stage-start":
        _stage_name(record)
        _int_field(record, "stageIndex")
        _int_field(record, "epochs", 1)
        _int_field(record, "stepsPerEpoch")
        _int_field(record, "startEpoch")
        _need(record.get("teacher") is None or isinstance(record["teacher"], str), "teacher: expected text or null")
    elif kind == "step":
        _stage_name(record)
        _int_field(record, "epoch")
        _int_field(record, "step")
        loss = record.get("loss")
        _need(isinstance(loss, dict), "loss: expected an object")
        for k in ("crossEntropy", "attention", "distillation", "total"):
            _loss_value(loss.get(k), f"loss.{k}")
        _need(_is_number(record.get("learningRate")), "learningRate: expected a number")
        _loss_value(record.get("imagesPerSecond"), "imagesPerSecond")
    elif kind == "epoch":
        _stage_name(record)
        _int_field(record, "epoch")
        _accuracy(record.get("train"), "train")
        _accuracy(record.get("test"), "test")
        flips = record.get("flipRatios")
        _need(isinstance(flips, list), "flipRatios: expected a list")
        for f in flips:
            _need(isinstance(f, dict) and isinstance(f.get("layer"), str), "flipRatios: expected {layer, ratio}")
            _need(_is_number(f.get("ratio")) and 0 <= f["ratio"] <= 1, "flipRatios.ratio: expected [0, 1]")
        _need(_is_number(record.get("seconds")) and record["seconds"] >= 0, "seconds: expected a number >= 0")
    elif kind == "stage-end":
        _stage_name(record)
        _int_field(record, "stageIndex")
        if record.get("test") is not None:
            _accuracy(record["test"], "test")
        _need(_is_number(record.get("seconds")) and record["seconds"] >= 0, "seconds: expected a number >= 0")
        _need(isinstance(record.get("stopped"), bool), "stopped: expected a boolean")
        record = {**record, "test": record.get("test")}
    elif kind == "checkpoint":
        stage = _stage_name(record)
        if "epochsCompleted" not in record and "epoch" in record:  # format 1
            epochs = _int_field(record, "epoch")
            _need(record.get("path") == checkpoint_path(stage, epochs), "path must be <stage>/e<epoch>")
            record = {k: v for k, v in record.items() if k not in ("epoch", "path")}
            record["epochsCompleted"] = epochs
        _int_field(record, "epochsCompleted")
        _int_field(record, "step")
        _need(isinstance(record.get("sha256"), str) and SHA256.match(record["sha256"]), "sha256: expected hex")
        _int_field(record, "bytes")
        _need(isinstance(record.get("final"), bool), "final: expected a boolean")
        record = {
            "kind": "checkpoint",
            "stage": stage,
            "epochsCompleted": record["epochsCompleted"],
            "step": record["step"],
            "sha256": record["sha256"],
            "bytes": record["bytes"],
            "final": record["final"],
        }
    elif kind == "resumed":
        stage = _stage_name(record)
        if "epochsCompleted" not in record and "epoch" in record:  # format 1
            record = {"kind": "resumed", "stage": stage, "epochsCompleted": record["epoch"]}
        _int_field(record, "epochsCompleted")
        record = {"kind": "resumed", "stage": stage, "epochsCompleted": record["epochsCompleted"]}
    else:
        raise _Invalid(f"kind: unknown record kind {kind!r}")
    return record


def parse_snapshot_entry(entry: Any) -> dict[str, Any]:
    """One snapshot index entry, validated; a format-1 entry is migrated (and marked `format: 1`, which is
    never written, so its payload is read under its old name until the folder is rewritten)."""
    _need(isinstance(entry, dict), "not an object")
    kind = entry.get("kind")
    _need(kind in ("attention", "gates"), "kind: expected attention or gates")
    stage = _stage_name(entry)
    probes = entry.get("probes")
    _need(isinstance(probes, list) and all(_is_int(p) for p in probes), "probes: expected integers")
    if "epochsCompleted" not in entry and "arrays" in entry:
        return _migrate_snapshot_entry(entry, kind, stage, probes)
    epochs = _int_field(entry, "epochsCompleted", 1)
    _need(entry.get("file") == snapshot_file(stage, kind, epochs), "file must be <stage>/<kind>-<epochsCompleted>.bin")
    out: dict[str, Any] = {"kind": kind, "stage": stage, "epochsCompleted": epochs, "probes": probes}
    out["file"] = entry["file"]
    if kind == "attention":
        _need(entry.get("form") in ("paper", "larq"), "form: expected paper or larq")
        points = entry.get("points")
        _need(isinstance(points, list), "points: expected a list")
        for p in points:
            _need(isinstance(p, dict) and isinstance(p.get("point"), str), "points: expected {point, student, teacher}")
            _tensor_ref(p.get("student"), "points.student")
            if p.get("teacher") is not None:
                _tensor_ref(p["teacher"], "points.teacher")
        out["form"] = entry["form"]
        out["points"] = [{"point": p["point"], "student": p["student"], "teacher": p.get("teacher")} for p in points]
    else:
        _need(_is_int(entry.get("subset")), "subset: expected an integer >= 0")
        gates = entry.get("gates")
        _need(isinstance(gates, list), "gates: expected a list")
        for g in gates:
            _need(isinstance(g, dict) and isinstance(g.get("block"), str), "gates: expected {block, mean, perProbe}")
            _tensor_ref(g.get("mean"), "gates.mean")
            _tensor_ref(g.get("perProbe"), "gates.perProbe")
        out["subset"] = entry["subset"]
        out["gates"] = [{"block": g["block"], "mean": g["mean"], "perProbe": g["perProbe"]} for g in gates]
    return out


def _migrate_snapshot_entry(entry: dict, kind: str, stage: str, probes: list[int]) -> dict[str, Any]:
    epoch = _int_field(entry, "epoch")
    _need(entry.get("file") == format1_snapshot_file(stage, epoch, kind), "file must be <stage>/e<epoch>-<kind>.bin")
    meta = entry.get("meta")
    arrays = entry.get("arrays")
    _need(isinstance(meta, dict) and isinstance(arrays, list), "meta and arrays: expected an object and a list")
    refs: dict[str, dict[str, dict]] = {}
    for a in arrays:
        _need(isinstance(a, dict) and isinstance(a.get("name"), str) and "/" in a["name"], "arrays: expected names")
        _tensor_ref(a, f"arrays.{a['name']}")
        owner, part = a["name"].rsplit("/", 1)
        refs.setdefault(owner, {})[part] = {"shape": a["shape"], "offset": a["offset"]}
    out: dict[str, Any] = {
        "kind": kind,
        "stage": stage,
        "epochsCompleted": epoch + 1,
        "probes": probes,
        "file": snapshot_file(stage, kind, epoch + 1),
        "format": 1,
    }
    if kind == "attention":
        _need(meta.get("form") in ("paper", "larq"), "meta.form: expected paper or larq")
        out["form"] = meta["form"]
        points = []
        for point, parts in refs.items():
            _need("student" in parts, f"arrays: {point}/student is missing")
            points.append({"point": point, "student": parts["student"], "teacher": parts.get("teacher")})
        out["points"] = points
    else:
        _need(_is_int(meta.get("subset")), "meta.subset: expected an integer")
        out["subset"] = meta["subset"]
        gates = []
        for block, parts in refs.items():
            _need("mean" in parts and "probes" in parts, f"arrays: {block}/mean or /probes is missing")
            gates.append({"block": block, "mean": parts["mean"], "perProbe": parts["probes"]})
        out["gates"] = gates
    return out


def _stored_entry(entry: dict) -> dict:
    """An entry as written (format 2): without the in-memory format marker."""
    return {k: v for k, v in entry.items() if k != "format"}


def migrate_meta(meta: Any, where: str = RUN_FILE) -> dict[str, Any]:
    """run.json validated, version 1 migrated to version 2. Raises RunFolderError naming `where`."""
    try:
        _need(isinstance(meta, dict), "not an object")
        version = meta.get("version")
        _need(version in (1, 2), f"version: {version!r} is not 1 or 2")
        _need(isinstance(meta.get("id"), str) and RUN_ID.match(meta["id"]) is not None, "id: not a run id")
        _need(isinstance(meta.get("name"), str), "name: expected text")
        _need(meta.get("status") in RUN_STATUSES, f"status: expected one of {', '.join(RUN_STATUSES)}")
        _need(meta.get("error") is None or isinstance(meta["error"], str), "error: expected text or null")
        _need(isinstance(meta.get("config"), dict), "config: expected an object")
        _need(isinstance(meta.get("environment"), dict), "environment: expected an object")
        stages = meta.get("stages")
        _need(isinstance(stages, list), "stages: expected a list")
        out = dict(meta)
        out["stages"] = []
        for s in stages:
            _need(isinstance(s, dict), "stages: expected objects")
            _stage_name(s, "name")
            _need(s.get("status") in STAGE_STATUSES, f"stages.status: expected one of {', '.join(STAGE_STATUSES)}")
            s = dict(s)
            if "epochsCompleted" not in s and "epochsDone" in s:
                s["epochsCompleted"] = s.pop("epochsDone")
            _int_field(s, "epochs")
            _int_field(s, "epochsCompleted")
            out["stages"].append(
                {
                    "name": s["name"],
                    "status": s["status"],
                    "epochs": s["epochs"],
                    "epochsCompleted": s["epochsCompleted"],
                    "testTop1": s.get("testTop1"),
                    "testTop5": s.get("testTop5"),
                }
            )
        if version == 1:
            out["environment"] = _migrate_environment(meta["environment"])
        out["version"] = FORMAT_VERSION
        return out
    except _Invalid as problem:
        raise RunFolderError(f"{where}: {problem}: restore it from a backup or remove the run folder") from None


def _migrate_environment(env: dict) -> dict[str, Any]:
    """Format 1's {backend, node, platform} (the tfjs engine's) as format 2's environment."""
    backend = env.get("backend")
    versions = {"node": env["node"]} if isinstance(env.get("node"), str) else {}
    device = None
    if isinstance(backend, dict):
        if isinstance(backend.get("tfjsVersion"), str):
            versions["tfjs"] = backend["tfjsVersion"]
        adapter = backend.get("adapter") if isinstance(backend.get("adapter"), dict) else None
        description = (adapter or {}).get("description") or backend.get("reason") or str(backend.get("backend"))
        device = {"kind": backend.get("backend"), "description": description}
    platform = env.get("platform") if isinstance(env.get("platform"), str) else ""
    return {
        "engine": "tfjs",
        "device": device,
        "versions": versions,
        "platform": platform,
        "backend": backend,
        "distributed": None,
    }


# --- the folder --------------------------------------------------------------------------------------------


def _parse_lines(text: str, parse: Callable[[Any], dict], file: Path) -> list[dict[str, Any]]:
    """JSON lines; an unparsable or invalid last line without its newline is a torn write and is dropped."""
    raw = text.split("\n")
    out = []
    for i, line in enumerate(raw):
        if line == "":
            continue
        try:
            out.append(parse(json.loads(line)))
            continue
        except json.JSONDecodeError:
            problem = "not JSON"
        except ValueError as error:
            problem = str(error)
        last = i == len(raw) - 1
        if last and not text.endswith("\n"):
            break
        raise RunFolderError(f"{file}: line {i + 1} is not a valid record ({problem}): the run folder is damaged")
    return out


def _finite(v: Any) -> Any:
    """JSON has no NaN or Infinity: a value that is not finite is stored as null (read back as NaN)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_finite(x) for x in v]
    return v


class RunFolder:
    """One run folder. Reading methods validate and migrate; writing methods write format 2."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.id = self.path.name
        if RUN_ID.match(self.id) is None:
            raise RunFolderError(
                f"{self.path}: '{self.id}' is not a run id (lowercase letters, digits and dashes, up to 80)"
            )

    @property
    def runs_dir(self) -> Path:
        return self.path.parent

    @property
    def run_file(self) -> Path:
        return self.path / RUN_FILE

    @property
    def log_file(self) -> Path:
        return self.path / LOG_FILE

    @property
    def snapshots(self) -> Path:
        return self.path / SNAPSHOTS

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    # --- run.json ---

    def read_meta(self) -> dict[str, Any]:
        file = self.run_file
        if not file.exists():
            raise RunFolderError(f"{file} is missing: {self.path} is not a run folder")
        try:
            data = json.loads(file.read_text())
        except (OSError, UnicodeDecodeError) as error:
            raise RunFolderError(f"{file} cannot be read ({error}): check the folder's permissions") from None
        except json.JSONDecodeError:
            raise RunFolderError(
                f"{file} is not valid JSON (truncated or edited?): restore it from a backup or remove the run folder"
            ) from None
        meta = migrate_meta(data, str(file))
        if meta["id"] != self.id:
            raise RunFolderError(
                f'{file} says it is run "{meta["id"]}", but its folder is "{self.id}": rename one to match'
            )
        return meta

    def write_meta(self, meta: dict[str, Any]) -> dict[str, Any]:
        meta = {**meta, "version": FORMAT_VERSION, "updatedAt": now_iso()}
        write_atomic(self.run_file, json_text(_finite(meta), indent=2) + "\n")
        return meta

    def update_meta(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Reads run.json, applies `change` and replaces the file (what another writer changed in between
        is kept where `change` does not set it)."""
        return self.write_meta(change(self.read_meta()))

    # --- events.jsonl ---

    def read_log(self) -> list[dict[str, Any]]:
        file = self.log_file
        try:
            text = file.read_text()
        except FileNotFoundError:
            raise RunFolderError(
                f"{file} is missing: run {self.id} has lost its metrics log and cannot be shown or resumed"
            ) from None
        return _parse_lines(text, parse_log_line, file)

    def append_log(self, records: Iterable[dict[str, Any]], sync: bool = False) -> None:
        append_lines(self.log_file, (_finite(r) for r in records), sync)

    def checkpoint_lines(self) -> list[dict[str, Any]]:
        return [line for line in self.read_log() if line["kind"] == "checkpoint"]

    # --- snapshots ---

    def snapshot_index(self) -> list[dict[str, Any]]:
        file = self.snapshots / SNAPSHOT_INDEX
        if not file.exists():
            return []
        return _parse_lines(file.read_text(), parse_snapshot_entry, file)

    def write_snapshot(self, record: dict[str, Any]) -> dict[str, Any]:
        """Stores an `attention` or `gates` record (numpy arrays) as its payload file, then its index line."""
        kind, stage, epochs = record["kind"], record["stage"], record["epochsCompleted"]
        if STAGE_NAME.match(stage) is None:
            raise RunFolderError(f"'{stage}' is not a stage name")
        arrays: list[np.ndarray] = []
        offset = 0

        def ref(array: np.ndarray) -> dict[str, Any]:
            nonlocal offset
            a = np.ascontiguousarray(array, dtype="<f4")
            arrays.append(a.reshape(-1))
            out = {"shape": list(a.shape), "offset": offset}
            offset += a.size
            return out

        entry: dict[str, Any] = {
            "kind": kind,
            "stage": stage,
            "epochsCompleted": epochs,
            "probes": [int(p) for p in record["probes"]],
            "file": snapshot_file(stage, kind, epochs),
        }
        if kind == "attention":
            entry["form"] = record["form"]
            entry["points"] = []
            for p in record["points"]:
                student = ref(p["student"])
                teacher = ref(p["teacher"]) if p["teacher"] is not None else None
                entry["points"].append({"point": p["point"], "student": student, "teacher": teacher})
        elif kind == "gates":
            entry["subset"] = int(record["subset"])
            entry["gates"] = []
            for g in record["gates"]:
                mean = ref(g["mean"])
                entry["gates"].append({"block": g["block"], "mean": mean, "perProbe": ref(g["perProbe"])})
        else:
            raise ValueError(f"not a snapshot record: {kind}")
        payload = np.concatenate(arrays).tobytes() if arrays else b""
        (self.snapshots / stage).mkdir(parents=True, exist_ok=True)
        write_atomic(self.snapshots / entry["file"], payload)
        append_lines(self.snapshots / SNAPSHOT_INDEX, [entry])
        return entry

    def read_snapshot(self, entry: dict[str, Any]) -> dict[str, np.ndarray]:
        """A snapshot's arrays by name: `<point>/student`, `<point>/teacher`, `<block>/mean`,
        `<block>/perProbe`. The file is the one the entry's fields name, always."""
        stage, kind, epochs = entry.get("stage"), entry.get("kind"), entry.get("epochsCompleted")
        if not isinstance(stage, str) or STAGE_NAME.match(stage) is None or kind not in ("attention", "gates"):
            raise RunFolderError(f"not a snapshot index entry: {stage!r} {kind!r}")
        if not _is_int(epochs, 1):
            raise RunFolderError(f"snapshot of stage {stage}: epochsCompleted {epochs!r}")
        name = (
            format1_snapshot_file(stage, epochs - 1, kind)
            if entry.get("format") == 1
            else snapshot_file(stage, kind, epochs)
        )
        file = self.snapshots / name
        try:
            raw = file.read_bytes()
        except OSError:
            raise RunFolderError(f"{file} is missing: the run's snapshot index names it") from None
        if len(raw) % 4:
            raise RunFolderError(f"{file} is {len(raw)} bytes, not whole float32 values: it is damaged")
        data = np.frombuffer(raw, dtype="<f4")
        refs: list[tuple[str, dict]] = []
        if entry["kind"] == "attention":
            for p in entry["points"]:
                refs.append((f"{p['point']}/student", p["student"]))
                if p["teacher"] is not None:
                    refs.append((f"{p['point']}/teacher", p["teacher"]))
        else:
            for g in entry["gates"]:
                refs += [(f"{g['block']}/mean", g["mean"]), (f"{g['block']}/perProbe", g["perProbe"])]
        out = {}
        for key, r in refs:
            size = int(np.prod(r["shape"], dtype=np.int64))
            if r["offset"] + size > data.size:
                raise RunFolderError(f"{file} is truncated: {key} lies beyond its end")
            out[key] = data[r["offset"] : r["offset"] + size].reshape(r["shape"])
        return out

    # --- checkpoints ---

    def write_checkpoint(self, stage: str, checkpoint: Checkpoint, final: bool) -> dict[str, Any]:
        """Writes the checkpoint folder (as `e<N>.<hex>.tmp`, renamed into place whole), then its log line,
        and flushes the log: the line is what makes the epoch count as done."""
        if STAGE_NAME.match(stage) is None:
            raise RunFolderError(f"'{stage}' is not a stage name")
        epochs = checkpoint.epochs_completed
        manifest = write_checkpoint_dir(
            self.checkpoints / checkpoint_path(stage, epochs),
            checkpoint,
            before_rename=lambda _: fault_point("before-checkpoint-rename", stage, epochs),
        )
        fault_point("after-checkpoint-rename", stage, epochs)
        line = {
            "kind": "checkpoint",
            "stage": stage,
            "epochsCompleted": epochs,
            "step": int(manifest["step"]),
            "sha256": manifest["sha256"],
            "bytes": manifest["bytes"],
            "final": bool(final),
        }
        self.append_log([line], sync=True)
        return line

    def read_checkpoint(self, line: dict[str, Any], run_label: str | None = None) -> Checkpoint:
        """Loads the checkpoint a log line names, verified against the line's checksum and size and its own
        manifest's; refuses one that is missing, corrupted or says it is another stage or epoch."""
        where = f"checkpoint {checkpoint_path(line['stage'], line['epochsCompleted'])} of run {run_label or self.id}"
        directory = self.checkpoints / checkpoint_path(line["stage"], line["epochsCompleted"])
        if not (directory / "data.bin").exists() or not (directory / "manifest.json").exists():
            raise RunFolderError(f"{where} is missing ({directory}): the run cannot continue from it")
        try:
            checkpoint = read_checkpoint_dir(directory, sha256=line["sha256"], size=line["bytes"])
            epochs = manifest_epochs(checkpoint.manifest)
        except ValueError as error:
            message = str(error)
            if "checksum" in message:
                raise RunFolderError(
                    f"{where} is corrupted (checksum mismatch in {directory / 'data.bin'}): refusing to load it"
                ) from None
            raise RunFolderError(f"{where} cannot be loaded: {message}") from None
        if checkpoint.manifest.get("stage") != line["stage"] or epochs != line["epochsCompleted"]:
            raise RunFolderError(
                f"{where} does not match its log line: it says stage {checkpoint.manifest.get('stage')}, "
                f"{epochs} epochs completed"
            )
        return checkpoint

    def sweep_checkpoint_temps(self) -> list[Path]:
        """Removes checkpoint folders a killed writer left half written (`<stage>/e<N>.<hex>.tmp`). Only the
        process about to train the run calls this, holding the training lock: no writer is live."""
        removed = []
        if not self.checkpoints.is_dir():
            return removed
        for stage in self.checkpoints.iterdir():
            if not stage.is_dir():
                continue
            for child in stage.iterdir():
                if CHECKPOINT_TEMP.match(child.name):
                    shutil.rmtree(child, ignore_errors=True)
                    removed.append(child)
        return removed

    # --- resume ---

    def roll_back(self) -> dict[str, Any] | None:
        """Rolls the run back to its last checkpoint for a resume (docs/run-format.md): temp checkpoint
        folders removed; the log kept up to the last checkpoint line (and the stage-end right after it, unless
        that stage was stopped); the snapshot index kept where a checkpoint line has the same (stage,
        epochsCompleted); both rewritten atomically in format 2 (a format-1 folder's snapshot payloads renamed
        first). Returns that checkpoint line, or None when no epoch was completed. Appends nothing."""
        self.sweep_checkpoint_temps()
        lines = self.read_log()
        last = -1
        for i, line in enumerate(lines):
            if line["kind"] == "checkpoint":
                last = i
        if last >= 0 and last + 1 < len(lines):
            after = lines[last + 1]
            if after["kind"] == "stage-end" and after["stopped"] is not True:
                last += 1
        kept = lines[: last + 1]
        checkpoints = [line for line in kept if line["kind"] == "checkpoint"]
        done = {(line["stage"], line["epochsCompleted"]) for line in checkpoints}

        index = self.snapshot_index()
        chosen: dict[tuple[str, int, str], dict] = {}
        for entry in index:
            key = (entry["stage"], entry["epochsCompleted"], entry["kind"])
            if key[:2] in done:
                chosen[key] = entry  # the last entry of a (stage, epoch, kind) wins
        kept_index = list(chosen.values())
        legacy = [e for e in kept_index if e.get("format") == 1]
        for entry in legacy:
            old = self.snapshots / format1_snapshot_file(entry["stage"], entry["epochsCompleted"] - 1, entry["kind"])
            new = self.snapshots / entry["file"]
            if old.exists():
                _link_or_copy(old, new)
        index_text = "".join(json_line(_stored_entry(e)) for e in kept_index)
        index_file = self.snapshots / SNAPSHOT_INDEX
        if index_file.exists() or kept_index:
            self.snapshots.mkdir(parents=True, exist_ok=True)
            if not index_file.exists() or index_file.read_text() != index_text:
                write_atomic(index_file, index_text)
        for line in checkpoints:
            self._migrate_manifest(line)
        log_text = "".join(json_line(_finite(line)) for line in kept)
        if self.log_file.read_text() != log_text:
            write_atomic(self.log_file, log_text)
        referenced = {self.snapshots / e["file"] for e in kept_index}
        for entry in index:
            names = [self.snapshots / entry["file"]]
            if entry.get("format") == 1:
                names.append(
                    self.snapshots / format1_snapshot_file(entry["stage"], entry["epochsCompleted"] - 1, entry["kind"])
                )
            for name in names:
                if name not in referenced:
                    name.unlink(missing_ok=True)
        return checkpoints[-1] if checkpoints else None

    def _migrate_manifest(self, line: dict[str, Any]) -> None:
        """Rewrites a version-1 checkpoint manifest (`epoch`) as version 2 (`epochsCompleted`), atomically; the
        payload and its checksum are untouched."""
        file = self.checkpoints / checkpoint_path(line["stage"], line["epochsCompleted"]) / "manifest.json"
        try:
            manifest = json.loads(file.read_text())
        except (OSError, ValueError):
            return  # reported when the checkpoint is loaded
        if not isinstance(manifest, dict) or manifest.get("version") != 1 or "epoch" not in manifest:
            return
        migrated = {}
        for key, value in manifest.items():
            if key == "version":
                migrated[key] = 2
            elif key == "epoch":
                migrated["epochsCompleted"] = value
            else:
                migrated[key] = value
        write_atomic(file, json_text(migrated, indent=2) + "\n")

    # --- requests ---

    def stop_requested(self) -> bool:
        return (self.path / STOP_REQUEST).exists()

    def pause_requested(self) -> bool:
        return (self.path / PAUSE_REQUEST).exists()

    def request_stop(self) -> None:
        append_text(self.path / STOP_REQUEST, now_iso() + "\n")

    def request_pause(self, paused: bool = True) -> None:
        if paused:
            append_text(self.path / PAUSE_REQUEST, now_iso() + "\n")
        else:
            (self.path / PAUSE_REQUEST).unlink(missing_ok=True)

    def clear_stop_request(self) -> None:
        (self.path / STOP_REQUEST).unlink(missing_ok=True)


def _link_or_copy(source: Path, target: Path) -> None:
    """`target` holds `source`'s bytes (a hard link where the file system has them), replacing any old one."""
    temp = target.parent / f".{target.name}.{os.getpid()}.tmp"
    temp.unlink(missing_ok=True)
    try:
        os.link(source, temp)
    except OSError:
        shutil.copyfile(source, temp)
    os.replace(temp, target)


def new_run_id(pipeline: str, now: str | None = None) -> str:
    """`<yyyymmdd>-<hhmmss>-<pipeline>-<hex4>`, as the run store names runs."""
    import secrets

    stamp = (now or now_iso())[:19].replace("-", "").replace(":", "").replace("T", "-")
    return f"{stamp}-{re.sub(r'[^a-z0-9]+', '-', pipeline)}-{secrets.token_hex(2)}"


def create_run(
    runs_dir: str | Path,
    config: dict[str, Any],
    run_id: str | None = None,
    name: str | None = None,
    status: str = "queued",
) -> RunFolder:
    """A new run folder in format 2 (what the workbench's run store creates; for tests and tools), built in
    `.<pid>-<id>.tmp` and renamed into place, so it appears whole or not at all. `config` is the resolved
    run config as JSON."""
    runs_dir = Path(runs_dir)
    now = now_iso()
    run_id = run_id or new_run_id(str(config.get("pipeline", "run")), now)
    if RUN_ID.match(run_id) is None:
        raise RunFolderError(f"'{run_id}' is not a run id")
    target = runs_dir / run_id
    if target.exists():
        raise RunFolderError(f"{target} already exists")
    meta = {
        "version": FORMAT_VERSION,
        "id": run_id,
        "name": name or f"{config.get('pipeline', 'run')} · {config.get('preset', '')} · {config['data']['dataset']}",
        "createdAt": now,
        "updatedAt": now,
        "status": status,
        "error": None,
        "config": config,
        "environment": {
            "engine": "torch",
            "device": None,
            "versions": {},
            "platform": sys.platform,
            "backend": None,
            "distributed": None,
        },
        "stages": [
            {
                "name": s["name"],
                "status": "pending",
                "epochs": s.get("epochs", 1),
                "epochsCompleted": 0,
                "testTop1": None,
                "testTop5": None,
            }
            for s in config["stages"]
        ],
    }
    runs_dir.mkdir(parents=True, exist_ok=True)
    temp = runs_dir / f".{os.getpid()}-{run_id}.tmp"
    shutil.rmtree(temp, ignore_errors=True)
    (temp / SNAPSHOTS).mkdir(parents=True)
    (temp / CHECKPOINTS).mkdir()
    (temp / LOG_FILE).write_bytes(b"")
    write_atomic(temp / RUN_FILE, json_text(meta, indent=2) + "\n")
    os.replace(temp, target)
    return RunFolder(target)
