"""Training a run folder end to end (the PyTorch side of src/main/training/trainer.ts and
src/main/worker/training-job.ts): `train_run(run_dir, data_home)`.

1. Ownership. The training lock (`runs/.training.lock`) is taken, or, when the workbench started this process
   holding it (`lock_held_by`), checked to name that process and this run. A run another live process holds
   is refused, as is a finished run; nothing on disk changes then (TrainingRefused).
2. Checks before any change: run.json readable, config valid, dataset readable and fitting the config, every
   checkpoint the resume needs present and matching its checksum (the final one of each completed stage, the
   last one of the stage in progress, the final ones of other runs' stages this run refers to). A failure
   here marks the run `failed` with the reason and changes nothing else (TrainingFailed).
3. Resume: the folder is rolled back to its last checkpoint line (runfolder.RunFolder.roll_back), a `resumed`
   line is appended, a stale stop-request is removed, and run.json says `running` with this engine's
   environment. Completed stages are loaded, the interrupted one continues at its checkpoint's epoch: a killed
   process loses at most the epoch it was in, which is trained again, once.
4. Training: every record is written to the folder as it comes (log lines; snapshots; checkpoint folders and
   their lines, flushed), and run.json follows the stages (status, epochsCompleted, test accuracy). Between
   steps the engine looks for `stop-request` (stop at the next step: status `stopped`, the stage `stopped`)
   and `pause-request` (status `paused` while it is there). A loss that is not finite stops the run as the
   tfjs trainer does, status `failed` with the same advice, and that epoch is not committed. Any other error
   marks the run `failed` with a one-line message. The end is `finished`.

Crash tests reproduce each window of the protocol with faults.py (`R2B_FAULT`), which is inert unless set.
"""

from __future__ import annotations

import math
import os
import signal as signals
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .checkpoint import Checkpoint
from .config import RunConfig, parse_run_config
from .data import DatasetReader, dataset_dir
from .devices import DeviceError, configure, environment, select_device
from .faults import fault_point
from .lock import LockError, TrainingLock, training_busy
from .pipeline import PipelineResult, Resume, external_references, run_pipeline
from .runfolder import STAGE_NAME, RunFolder, RunFolderError
from .stage import StopSignal


class TrainingRefused(Exception):
    """The run cannot be trained by this process now; nothing on disk was changed."""


class TrainingFailed(Exception):
    """Training could not start or did not end well; the run says `failed` with this message."""


@dataclass
class RunOutcome:
    run_id: str
    status: str
    error: str | None


def one_line(error: BaseException | str) -> str:
    """The first non-empty line of an error's message (shared/errors.ts oneLine)."""
    text = str(error)
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__ if isinstance(error, BaseException) else "error"


def js_number(value: float) -> str:
    """A number as JavaScript prints it in a template string (NaN, Infinity, -Infinity, 0.5, 3)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def non_finite_advice(total: float, stage: str, step: int) -> str:
    """The tfjs trainer's words for a run whose loss stopped being finite."""
    return (
        f"the loss became {js_number(total)} at stage {stage}, step {step}: "
        "lower the learning rate (e.g. --set stages.<i>.optimizer.learningRate=...) and resume or start again"
    )


def failure_message(error: BaseException) -> str:
    """One line for an error that ended training: the user-facing errors as they are, the rest with their
    type (an internal error should say what it was), out-of-memory and disk errors with what to do."""
    text = one_line(error)
    if isinstance(error, (RunFolderError, TrainingFailed)):
        return text
    if isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in text.lower():
        return f"the device ran out of memory ({text}): lower stages.<i>.batchSize or model.width, and resume"
    if isinstance(error, OSError):
        return f"could not read or write the run on disk: {text}"
    return f"{type(error).__name__}: {text}"


def interrupted_advice(run_id: str) -> str:
    return f"the process training it ended unexpectedly; continue with `npm run r2b -- resume {run_id}`"


def check_dataset_fits(config: RunConfig, manifest: dict[str, Any]) -> None:
    """training/dataset-fit.ts checkDatasetFits: shape, channels and classes match; both splits have images;
    every stage's batch fits in the training split."""
    shape = manifest.get("shape") or [0, 0, 0]
    size, channels = shape[0], shape[2]
    dataset_id = manifest.get("id")
    classes = len(manifest.get("classes") or [])
    if config.data.input_size != size or config.data.channels != channels or config.data.classes != classes:
        raise TrainingFailed(
            f"the data.* settings must match dataset {dataset_id} ({size}×{size}×{channels}, {classes} classes)"
        )
    splits = manifest.get("splits") or {}
    for split in ("train", "test"):
        if not splits.get(split):
            raise TrainingFailed(
                f"dataset {dataset_id} has no {split} images: import it again with its {split} files "
                f"(see `npm run r2b -- datasets inspect {dataset_id}`)"
            )
    for stage in config.stages:
        if stage.batch_size > splits["train"]:
            raise TrainingFailed(
                f"stage {stage.name}: batch size {stage.batch_size} is larger than the {splits['train']} training "
                f"images of {dataset_id}: lower stages.<i>.batchSize"
            )


class _Session:
    """One training session of one run: the folder, what it continues from, and the state of its end."""

    def __init__(
        self,
        folder: RunFolder,
        meta: dict[str, Any],
        device: torch.device,
        env: dict[str, Any],
        on_record: Callable[[dict[str, Any]], None] | None,
        poll_seconds: float,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        self.stop = stop
        self.folder = folder
        self.meta = meta
        self.config = parse_run_config(meta["config"])
        self.device = device
        self.env = env
        self.on_record = on_record
        self.poll = poll_seconds
        self.signal = StopSignal()
        self.status = "running"
        self.error: str | None = None
        self.failure: str | None = None

    # run.json while we own it: our status and error overwrite whatever another writer put there.
    def update(self, change: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        def apply(m: dict[str, Any]) -> dict[str, Any]:
            m = change(m) if change is not None else m
            return {**m, "status": self.status, "error": self.error}

        self.meta = self.folder.update_meta(apply)

    def stage_progress(self, name: str, **fields: Any) -> None:
        def change(m: dict[str, Any]) -> dict[str, Any]:
            return {**m, "stages": [{**s, **fields} if s["name"] == name else s for s in m["stages"]]}

        self.update(change)

    def spec_epochs(self, stage: str) -> int:
        for spec in self.config.stages:
            if spec.name == stage:
                return spec.epochs
        raise RunFolderError(f"stage {stage} is not in the run's config")

    def persist(self, record: dict[str, Any]) -> None:
        kind = record["kind"]
        if kind in ("attention", "gates"):
            self.folder.write_snapshot(record)
        elif kind == "checkpoint":
            stage = record["stage"]
            final = record["epochsCompleted"] == self.spec_epochs(stage)
            line = self.folder.write_checkpoint(stage, record["checkpoint"], final)
            self.stage_progress(stage, epochsCompleted=line["epochsCompleted"])
        else:
            self.folder.append_log([record])
        if kind == "step":
            total = record["loss"]["total"]
            if not math.isfinite(total) and self.failure is None:
                self.failure = non_finite_advice(total, record["stage"], record["step"])
                self.signal.aborted = True
                self.signal.abandon_epoch = True
        elif kind == "stage-start":
            self.stage_progress(record["stage"], status="running")
        elif kind == "epoch":
            self.stage_progress(record["stage"], testTop1=record["test"]["top1"], testTop5=record["test"]["top5"])
        elif kind == "stage-end":
            fields: dict[str, Any] = {"status": "stopped" if record["stopped"] else "finished"}
            if record["test"] is not None:
                fields.update(testTop1=record["test"]["top1"], testTop5=record["test"]["top5"])
            self.stage_progress(record["stage"], **fields)

    def stop_wanted(self) -> bool:
        return (self.stop is not None and self.stop()) or self.folder.stop_requested()

    def between_steps(self) -> None:
        """After each record: a stop request ends the stage at the next step; a pause request holds here."""
        if self.stop_wanted():
            self.signal.aborted = True
        if self.signal.aborted or not self.folder.pause_requested():
            return
        self.status = "paused"
        self.update()
        while self.folder.pause_requested() and not self.stop_wanted():
            time.sleep(self.poll)
        if self.stop_wanted():
            self.signal.aborted = True
        self.status = "running"
        self.update()

    def finish(self, status: str, error: str | None) -> None:
        self.status = status
        self.error = error

        def change(m: dict[str, Any]) -> dict[str, Any]:
            # A stage left mid-way (failure, stop) no longer says it is running.
            stages = [{**s, "status": "stopped"} if s["status"] == "running" else s for s in m["stages"]]
            return {**m, "stages": stages}

        self.update(change)


def _load_resume(folder: RunFolder) -> tuple[dict[str, Any] | None, Resume]:
    lines = folder.checkpoint_lines()
    last = lines[-1] if lines else None
    completed = {line["stage"]: folder.read_checkpoint(line) for line in lines if line["final"]}
    current = folder.read_checkpoint(last) if last is not None and not last["final"] else None
    return last, Resume(completed=completed, current=current)


def _load_external(folder: RunFolder, config: RunConfig) -> dict[str, Checkpoint]:
    out: dict[str, Checkpoint] = {}
    for ref, run_id, stage in external_references(config):
        try:
            other = RunFolder(folder.runs_dir / run_id)
        except RunFolderError:
            raise TrainingFailed(f"{ref}: '{run_id}' is not a run id") from None
        if STAGE_NAME.match(stage) is None or not other.run_file.exists():
            raise TrainingFailed(f"{ref}: run {run_id} is not in {folder.runs_dir}")
        finals = [line for line in other.checkpoint_lines() if line["stage"] == stage and line["final"]]
        if not finals:
            raise TrainingFailed(f'{ref}: run {run_id} has no finished stage "{stage}"')
        out[ref] = other.read_checkpoint(finals[-1], run_id)
    return out


def train_run(
    run_dir: str | Path,
    data_home: str | Path | None = None,
    device: str = "auto",
    lock_held_by: int | None = None,
    threads: int | None = None,
    precision: str = "fp32",
    deterministic: bool = False,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    poll_seconds: float = 0.2,
    stop: Callable[[], bool] | None = None,
) -> RunOutcome:
    """Trains (or resumes) the run in `run_dir` to its end. `data_home` holds `datasets/` (default: the folder
    above `runs/`). `on_record` sees every record after it is on disk; `stop` is polled with the stop-request
    file (a signal handler's flag). Returns how it ended (finished, stopped, failed with the non-finite-loss
    advice); raises TrainingRefused (nothing changed) or TrainingFailed (the run says failed)."""
    try:
        folder = RunFolder(Path(run_dir).resolve())
    except RunFolderError as error:
        raise TrainingRefused(one_line(error)) from None
    if not folder.run_file.exists():
        raise TrainingRefused(f"{folder.run_file} is missing: {folder.path} is not a run folder")
    home = Path(data_home) if data_home is not None else folder.runs_dir.parent
    lock = TrainingLock(folder.runs_dir)
    if lock_held_by is not None:
        try:
            lock.verify(lock_held_by, folder.id)
        except LockError as error:
            raise TrainingRefused(one_line(error)) from None
        owns_lock = False
    else:
        holder = lock.acquire(folder.id)
        if holder is not None:
            raise TrainingRefused(training_busy(holder))
        owns_lock = True
    try:
        return _train_locked(folder, home, device, threads, precision, deterministic, on_record, poll_seconds, stop)
    finally:
        if owns_lock:
            lock.release()


def _mark_failed(folder: RunFolder, message: str) -> None:
    try:
        folder.update_meta(
            lambda m: {
                **m,
                "status": "failed",
                "error": message,
                "stages": [{**s, "status": "stopped"} if s["status"] == "running" else s for s in m["stages"]],
            }
        )
    except (RunFolderError, OSError):
        pass


def _train_locked(
    folder: RunFolder,
    home: Path,
    device_request: str,
    threads: int | None,
    precision: str,
    deterministic: bool,
    on_record: Callable[[dict[str, Any]], None] | None,
    poll_seconds: float,
    stop: Callable[[], bool] | None,
) -> RunOutcome:
    try:
        meta = folder.read_meta()
    except RunFolderError as error:
        raise TrainingRefused(one_line(error)) from None
    if meta["status"] == "finished":
        raise TrainingRefused(f"run {folder.id} has finished: there is nothing to resume")

    # Everything the session needs, checked before anything on disk changes.
    try:
        device = select_device(device_request)
        configure(device, threads, precision, deterministic)
        try:
            config = parse_run_config(meta["config"])
        except (ValueError, TypeError, KeyError) as error:
            raise TrainingFailed(f"{folder.run_file}: config: {one_line(error)}") from None
        try:
            reader = DatasetReader(dataset_dir(config.data.dataset, home))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise TrainingFailed(
                f'dataset "{config.data.dataset}" of run {folder.id} cannot be read ({one_line(error)}): '
                "import it again, see `npm run r2b -- datasets`"
            ) from None
        check_dataset_fits(config, reader.manifest)
        _, resume = _load_resume(folder)
        external = _load_external(folder, config)
    except DeviceError as error:
        raise TrainingRefused(one_line(error)) from None
    except (TrainingFailed, RunFolderError) as error:
        message = one_line(error)
        _mark_failed(folder, message)
        raise TrainingFailed(message) from None

    torch.manual_seed(config.seed)
    session: _Session | None = None
    try:
        last = folder.roll_back()
        if last is not None:
            folder.append_log([{"kind": "resumed", "stage": last["stage"], "epochsCompleted": last["epochsCompleted"]}])
        folder.clear_stop_request()
        session = _Session(folder, meta, device, environment(device, precision), on_record, poll_seconds, stop)
        completed = set(resume.completed) if last is not None else set()

        def start(m: dict[str, Any]) -> dict[str, Any]:
            # Stages a resume loads from their final checkpoints are finished, whatever the last session
            # managed to record before it ended.
            stages = [
                {**s, "status": "finished", "epochsCompleted": s["epochs"]} if s["name"] in completed else s
                for s in m["stages"]
            ]
            return {**m, "environment": session.env, "stages": stages}

        session.update(start)
        pipeline = run_pipeline(
            config,
            reader,
            resume=resume if last is not None else None,
            load_stage=lambda run_id, stage: external[f"run:{run_id}/{stage}"],
            signal=session.signal,
            device=device,
        )
        result: PipelineResult | None = None
        while True:
            try:
                record = next(pipeline)
            except StopIteration as end:
                result = end.value
                break
            session.persist(record)
            if record["kind"] == "step":
                fault_point("after-step", record["stage"], record["step"])
            if on_record is not None:
                on_record(record)
            session.between_steps()
        if session.failure is not None:
            session.finish("failed", session.failure)
        else:
            session.finish("stopped" if result.stopped else "finished", None)
        return RunOutcome(folder.id, session.status, session.error)
    except Exception as error:  # noqa: BLE001 - every failure is recorded in the run, in one line
        if os.environ.get("R2B_DEBUG"):
            import traceback

            traceback.print_exc()
        message = failure_message(error)
        if session is not None:
            try:
                session.finish("failed", message)
            except (RunFolderError, OSError):
                pass
        else:
            _mark_failed(folder, message)
        raise TrainingFailed(message) from None
    except BaseException:
        # Interrupted from outside (KeyboardInterrupt, SystemExit): resumable from the last checkpoint.
        if session is not None:
            try:
                session.finish("interrupted", interrupted_advice(folder.id))
            except (RunFolderError, OSError):
                pass
        raise


def install_stop_handlers() -> Callable[[], bool]:
    """SIGTERM and SIGINT ask the run to stop at the next step (as a stop-request would); a second one ends
    the process at once (the run then reads as interrupted, resumable from its last checkpoint). Returns the
    flag train_run polls."""
    state = {"stop": False}

    def handle(signum, frame):  # noqa: ARG001
        if state["stop"]:
            os._exit(128 + signum)
        state["stop"] = True

    for sig in (signals.SIGTERM, signals.SIGINT):
        signals.signal(sig, handle)
    return lambda: state["stop"]
