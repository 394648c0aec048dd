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
from .config import RunConfig, StageSpec, parse_run_config
from .data import DatasetReader, dataset_dir, run_input_size
from .devices import DeviceError, configure, cpu_cores, environment, select_device, select_process_device
from .distributed import CONTINUE, PAUSE, STOP, Group, PeerLost, Topology, is_transport_error, pin_cpu_share
from .faults import fault_point, pause_requested_at, stop_requested_at, trace_start, trace_step
from .lock import LockError, TrainingLock, is_alive, training_busy
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
    stored = config.data.stored_size or config.data.input_size
    if stored != size or config.data.channels != channels or config.data.classes != classes:
        note = f"; data.storedSize {config.data.stored_size} is the size it stores" if config.data.stored_size else ""
        raise TrainingFailed(
            f"the data.* settings must match dataset {dataset_id} ({size}×{size}×{channels}, {classes} classes{note})"
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


HOLDER_CHECK_SECONDS = 1.0

BOUNDARIES = ("stage-start", "step", "checkpoint")
"""Records after which the engine looks at stop and pause requests: the step boundaries (a stage's start, each
optimiser step, each committed epoch). Every process of a data-parallel job yields these records in the same
order, so they agree there."""


class _Session:
    """One training session of one run: the folder, what it continues from, and the state of its end. In a
    data-parallel job every process holds one; only the writer's (rank 0's) writes the folder."""

    def __init__(
        self,
        folder: RunFolder,
        meta: dict[str, Any],
        device: torch.device,
        env: dict[str, Any],
        on_record: Callable[[dict[str, Any]], None] | None,
        poll_seconds: float,
        stop: Callable[[], bool] | None = None,
        group: Group | None = None,
        holder: int | None = None,
    ) -> None:
        self.stop = stop
        self.holder = holder
        """The workbench process that holds the training lock for us (--lock-held-by): the writer checks, at
        most once per HOLDER_CHECK_SECONDS, that it is still alive; once it is gone the run stops at the next
        step boundary and says interrupted (resumable), as nothing is left to follow or release it."""
        self.holder_checked = 0.0
        self.orphaned: str | None = None
        self.folder = folder
        self.meta = meta
        self.config = parse_run_config(meta["config"])
        self.device = device
        self.env = env
        self.on_record = on_record
        self.poll = poll_seconds
        self.group = group
        self.writer = group is None or group.is_writer
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

    def spec(self, stage: str) -> StageSpec:
        for spec in self.config.stages:
            if spec.name == stage:
                return spec
        raise RunFolderError(f"stage {stage} is not in the run's config")

    def observe(self, record: dict[str, Any]) -> None:
        """What every process concludes from a record: a step whose loss is not finite ends the run (the loss
        is the global batch's, the same on every process, so all conclude it at the same step)."""
        if record["kind"] == "step":
            total = record["loss"]["total"]
            if not math.isfinite(total) and self.failure is None:
                self.failure = non_finite_advice(total, record["stage"], record["step"])
                self.signal.aborted = True
                self.signal.abandon_epoch = True

    def persist(self, record: dict[str, Any]) -> None:
        kind = record["kind"]
        if kind in ("attention", "gates"):
            self.folder.write_snapshot(record)
        elif kind == "checkpoint":
            stage = record["stage"]
            final = record["epochsCompleted"] == self.spec(stage).epochs
            line = self.folder.write_checkpoint(stage, record["checkpoint"], final)
            self.stage_progress(stage, epochsCompleted=line["epochsCompleted"])
        else:
            self.folder.append_log([record])
        if kind == "stage-start":
            if self.group is not None:
                # The share of this stage's batch (stages may differ in batch size).
                batch = self.spec(record["stage"]).batch_size // self.group.world_size
                self.env = {**self.env, "distributed": self.group.environment(batch)}
            name = record["stage"]

            def change(m: dict[str, Any]) -> dict[str, Any]:
                stages = [{**s, "status": "running"} if s["name"] == name else s for s in m["stages"]]
                return {**m, "environment": self.env, "stages": stages}

            self.update(change)
        elif kind == "epoch":
            self.stage_progress(record["stage"], testTop1=record["test"]["top1"], testTop5=record["test"]["top5"])
        elif kind == "stage-end":
            fields: dict[str, Any] = {"status": "stopped" if record["stopped"] else "finished"}
            if record["test"] is not None:
                fields.update(testTop1=record["test"]["top1"], testTop5=record["test"]["top5"])
            self.stage_progress(record["stage"], **fields)

    def decide(self) -> int:
        """CONTINUE, STOP or PAUSE at this boundary: the writer reads the requests, any process may have been
        asked to stop by a signal; in a data-parallel job every process gets the same answer."""
        stop = self.stop is not None and self.stop()
        pause = False
        if self.writer:
            stop = stop or self.folder.stop_requested() or self.holder_gone()
            pause = self.folder.pause_requested()
        if self.group is not None:
            return self.group.control(stop, pause)
        return STOP if stop else PAUSE if pause else CONTINUE

    def holder_gone(self) -> bool:
        """Whether the lock's holder (the workbench that started the engine) has ended (checked cheaply: one
        signal-0 probe at most once per HOLDER_CHECK_SECONDS)."""
        if self.orphaned is not None:
            return True
        if self.holder is None:
            return False
        now = time.monotonic()
        if now - self.holder_checked < HOLDER_CHECK_SECONDS:
            return False
        self.holder_checked = now
        if is_alive(self.holder):
            return False
        self.orphaned = (
            f"the workbench process (pid {self.holder}) that started the engine ended, so training stopped at "
            f"a step boundary; continue with `npm run r2b -- resume {self.folder.id}`"
        )
        return True

    def boundary(self) -> None:
        """At a step boundary: a stop request ends the stage at the next step; a pause request holds here
        (every process polls together, so none waits in a collective for longer than a poll)."""
        word = self.decide()
        if word == PAUSE and not self.signal.aborted:
            if self.writer:
                self.status = "paused"
                self.update()
            while word == PAUSE:
                time.sleep(self.poll)
                word = self.decide()
            if self.writer:
                self.status = "running"
                self.update()
        if word == STOP:
            self.signal.aborted = True

    def finish(self, status: str, error: str | None) -> None:
        self.status = status
        self.error = error
        if not self.writer:
            return

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


def _open_folder(run_dir: str | Path) -> RunFolder:
    try:
        folder = RunFolder(Path(run_dir).resolve())
    except RunFolderError as error:
        raise TrainingRefused(one_line(error)) from None
    if not folder.run_file.exists():
        raise TrainingRefused(f"{folder.run_file} is missing: {folder.path} is not a run folder")
    return folder


def _take_lock(folder: RunFolder, lock_held_by: int | None) -> bool:
    """Ownership of the run: checks the lock the workbench holds for us (`lock_held_by`), or takes it
    (recording this host and pid). Returns whether this process took it (and must release it)."""
    lock = TrainingLock(folder.runs_dir)
    if lock_held_by is not None:
        try:
            lock.verify(lock_held_by, folder.id)
        except LockError as error:
            raise TrainingRefused(one_line(error)) from None
        return False
    holder = lock.acquire(folder.id)
    if holder is not None:
        raise TrainingRefused(training_busy(holder, lock.file))
    return True


def _release_lock(folder: RunFolder) -> None:
    TrainingLock(folder.runs_dir).release()


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
    folder = _open_folder(run_dir)
    home = Path(data_home) if data_home is not None else folder.runs_dir.parent
    owns_lock = _take_lock(folder, lock_held_by)
    try:
        try:
            device_ = select_device(device)
            configure(device_, threads, precision, deterministic)
        except DeviceError as error:
            raise TrainingRefused(one_line(error)) from None
        prepared = _prepare(folder, home)
        return _train(folder, prepared, device_, precision, on_record, poll_seconds, stop, None, lock_held_by)
    finally:
        if owns_lock:
            _release_lock(folder)


@dataclass
class _Prepared:
    """Everything a session needs, read and checked before anything on disk changes."""

    meta: dict[str, Any]
    config: RunConfig
    reader: DatasetReader
    last: dict[str, Any] | None
    resume: Resume
    external: dict[str, Checkpoint]


def _prepare(folder: RunFolder, home: Path, world_size: int = 1, writer: bool = True) -> _Prepared:
    """Reads the run, its dataset and the checkpoints it continues from. Raises TrainingRefused (not this
    process's to train: nothing changed) or TrainingFailed (marked `failed` by the writer, nothing else
    changed)."""
    try:
        meta = folder.read_meta()
    except RunFolderError as error:
        raise TrainingRefused(one_line(error)) from None
    if meta["status"] == "finished":
        raise TrainingRefused(f"run {folder.id} has finished: there is nothing to resume")
    try:
        try:
            config = parse_run_config(meta["config"])
        except (ValueError, TypeError, KeyError) as error:
            raise TrainingFailed(f"{folder.run_file}: config: {one_line(error)}") from None
        for spec in config.stages:
            if spec.batch_size % world_size:
                raise TrainingRefused(
                    f"stage {spec.name}: its batch of {spec.batch_size} images cannot be split evenly over "
                    f"{world_size} processes: start a number of processes that divides it (the config's batch "
                    "is the global batch; its learning rates are for that batch)"
                )
        try:
            reader = DatasetReader(dataset_dir(config.data.dataset, home), run_input_size(config.data))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise TrainingFailed(
                f'dataset "{config.data.dataset}" of run {folder.id} cannot be read ({one_line(error)}): '
                "import it again, see `npm run r2b -- datasets`"
            ) from None
        check_dataset_fits(config, reader.manifest)
        last, resume = _load_resume(folder)
        external = _load_external(folder, config)
    except (TrainingFailed, RunFolderError) as error:
        message = one_line(error)
        if writer:
            _mark_failed(folder, message)
        raise TrainingFailed(message) from None
    return _Prepared(meta, config, reader, last, resume, external)


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


def _train(
    folder: RunFolder,
    prepared: _Prepared,
    device: torch.device,
    precision: str,
    on_record: Callable[[dict[str, Any]], None] | None,
    poll_seconds: float,
    stop: Callable[[], bool] | None,
    group: Group | None,
    holder: int | None = None,
) -> RunOutcome:
    """The session: roll-back and run.json (the writer), then the pipeline's records persisted as they come,
    with the requests obeyed at every step boundary."""
    config, last, resume = prepared.config, prepared.last, prepared.resume
    writer = group is None or group.is_writer
    torch.manual_seed(config.seed)
    trace_start()
    session: _Session | None = None
    try:
        completed = set(resume.completed) if last is not None else set()
        # A data-parallel session records the share of the batch of the stage it continues (or of the last).
        current = next((s for s in config.stages if s.name not in completed), config.stages[-1])
        env = environment(device, precision, group, current.batch_size // group.world_size if group else 0)
        session = _Session(folder, prepared.meta, device, env, on_record, poll_seconds, stop, group, holder)
        if writer:
            if folder.roll_back() is not None:
                folder.append_log(
                    [{"kind": "resumed", "stage": last["stage"], "epochsCompleted": last["epochsCompleted"]}]
                )
            folder.clear_stop_request()

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
            prepared.reader,
            resume=resume if last is not None else None,
            load_stage=lambda run_id, stage: prepared.external[f"run:{run_id}/{stage}"],
            signal=session.signal,
            device=device,
            group=group,
        )
        result: PipelineResult | None = None
        while True:
            try:
                record = next(pipeline)
            except StopIteration as end:
                result = end.value
                break
            session.observe(record)
            if writer:
                session.persist(record)
            if record["kind"] == "step":
                trace_step(record["stage"], record["step"])
                if writer and stop_requested_at(record["stage"], record["step"]):
                    folder.request_stop()
                if writer and pause_requested_at(record["stage"], record["step"]):
                    folder.request_pause()
                fault_point("after-step", record["stage"], record["step"])
            if writer and on_record is not None:
                on_record(record)
            if record["kind"] in BOUNDARIES:
                session.boundary()
        if session.failure is not None:
            session.finish("failed", session.failure)
        elif session.orphaned is not None and result.stopped:
            session.finish("interrupted", session.orphaned)
        else:
            session.finish("stopped" if result.stopped else "finished", None)
        return RunOutcome(folder.id, session.status, session.error)
    except Exception as error:  # noqa: BLE001 - every failure is recorded in the run, in one line
        if os.environ.get("R2B_DEBUG"):
            import traceback

            traceback.print_exc()
        if group is not None and is_transport_error(error):
            raise _peer_lost(folder, session, group) from None
        message = failure_message(error)
        if not writer:
            raise TrainingFailed(f"process {group.rank} of {group.world_size}: {message}") from None
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
        if session is not None and writer:
            try:
                session.finish("interrupted", interrupted_advice(folder.id))
            except (RunFolderError, OSError):
                pass
        raise


class TrainingInterrupted(Exception):
    """A data-parallel job lost a process: the run (when rank 0 survives) says `interrupted`, resumable."""


def _peer_lost(folder: RunFolder, session: _Session | None, group: Group) -> TrainingInterrupted:
    """What a surviving process does when another one ended: rank 0 marks the run interrupted with which
    process ended and how (as far as it can tell); the others only say it. No collective is attempted."""
    what = group.lost_peer()
    if not group.is_writer:
        if what.startswith("process 0 "):
            return TrainingInterrupted(
                f"{what}: it writes the run, so run.json still says running (the workbench reads that as "
                "interrupted); resume continues from the last checkpoint"
            )
        return TrainingInterrupted(f"{what}; the job ends (rank 0 records it in the run)")
    message = f"{what}; resume continues from the last checkpoint"
    if session is not None:
        try:
            session.finish("interrupted", message)
        except (RunFolderError, OSError):
            pass
    return TrainingInterrupted(message)


def train_distributed(
    run_dir: str | Path,
    topology: Topology,
    data_home: str | Path | None = None,
    device: str = "auto",
    lock_held_by: int | None = None,
    threads: int | None = None,
    precision: str = "fp32",
    deterministic: bool = False,
    sync_batch_norm: bool = False,
    poll_seconds: float = 0.2,
    stop: Callable[[], bool] | None = None,
    report: Callable[[BaseException], None] | None = None,
) -> RunOutcome:
    """train_run as one process of a torchrun job (distributed.py says what the processes share). Every
    process calls it; they join the job's process group first, so that whatever one finds before training
    (a device it lacks, a run it may not train, a batch that does not split) ends all of them alike:
    TrainingRefused (nothing changed) or TrainingFailed (the run says failed, by rank 0). Rank 0 holds the
    training lock (or checks the workbench's) and writes the run; the others read it. Raises
    TrainingInterrupted when another process of the job ended. `report` is how rank 0 tells what all
    processes found before training (a refusal, a failure): it is called before any process leaves, since
    torchrun ends the job's other processes as soon as one exits non-zero."""
    found: BaseException | None = None
    try:
        device_ = select_process_device(device, topology.local_rank)
        # Each process its share of the node's cores (torchrun's OMP_NUM_THREADS=1 is overridden): pinned to
        # them on the CPU; on CUDA (host-side work only) a count, not pinned.
        if threads:
            share = threads
        elif device_.type == "cpu":
            share = pin_cpu_share(topology)
        else:
            share = max(1, cpu_cores() // topology.local_world_size)
        configure(device_, share, precision, deterministic)
    except DeviceError as error:
        device_, found = torch.device("cpu"), TrainingRefused(one_line(error))
    group = Group(topology, device_, sync_batch_norm)
    try:
        group.start()
    except RuntimeError as error:
        raise TrainingRefused(f"could not join the torchrun job: {one_line(error)}") from None
    owns_lock = False
    folder: RunFolder | None = None
    healthy = True  # the group can be closed in order (no peer lost)
    try:
        _agree(group, found)
        try:
            folder = _open_folder(run_dir)
            home = Path(data_home) if data_home is not None else folder.runs_dir.parent
            if group.is_writer:
                owns_lock = _take_lock(folder, lock_held_by)
        except TrainingRefused as error:
            found = error
        _agree(group, found)
        try:
            prepared = _prepare(folder, home, group.world_size, writer=False)
        except (TrainingRefused, TrainingFailed) as error:
            found = error
        failure = _agree(group, found, raise_failure=False)
        if failure is not None:
            if group.is_writer:
                _mark_failed(folder, str(failure))
            raise failure
        group.attach_device()
        outcome = _train(folder, prepared, device_, precision, None, poll_seconds, stop, group, lock_held_by)
        try:
            group.gather(None)  # every process leaves together, once rank 0 has written the run's end
        except PeerLost:
            healthy = False
        return outcome
    except (TrainingRefused, TrainingFailed) as error:
        if getattr(error, "agreed", False):
            if group.is_writer and report is not None:
                report(error)
                error.reported = True
            try:
                group.gather(None)  # every process leaves once rank 0 has said why
            except PeerLost:
                healthy = False
        raise
    except PeerLost:
        healthy = False
        raise TrainingInterrupted(f"{group.lost_peer()}; the job ends before training began") from None
    except TrainingInterrupted:
        healthy = False
        raise
    finally:
        if owns_lock:
            _release_lock(folder)
        if healthy:
            group.close()


def _agree(group: Group, found: BaseException | None, raise_failure: bool = True) -> BaseException | None:
    """Every process's finding so far, combined the same way on all: rank 0's if it found something, else
    the first other process's (naming it). Raises it (a refusal always; a failure unless `raise_failure` is
    off, then returns it for the writer to record)."""
    findings = group.gather(None if found is None else (type(found).__name__, str(found)))
    for rank, finding in enumerate(findings):
        if finding is None:
            continue
        kind, message = finding
        if rank != 0:
            message = f"process {rank} of {group.world_size}: {message}"
        error = TrainingRefused(message) if kind == "TrainingRefused" else TrainingFailed(message)
        error.agreed = True  # every process raises it: rank 0 alone reports it
        if isinstance(error, TrainingFailed) and not raise_failure:
            return error
        raise error
    return None


def install_stop_handlers(grace_seconds: float = 0.0) -> Callable[[], bool]:
    """SIGTERM and SIGINT ask the run to stop at the next step (as a stop-request would); a second one ends
    the process at once (the run then reads as interrupted, resumable from its last checkpoint). Returns the
    flag train_run polls. `grace_seconds`: a second signal that soon after the first is the same request
    (under torchrun a signal to the job's process group reaches a process twice: directly, then forwarded by
    torchrun as it shuts down)."""
    state: dict[str, Any] = {"stop": False, "at": 0.0}

    def handle(signum, frame):  # noqa: ARG001
        if state["stop"]:
            if time.monotonic() - state["at"] < grace_seconds:
                return
            os._exit(128 + signum)
        state["stop"] = True
        state["at"] = time.monotonic()

    for sig in (signals.SIGTERM, signals.SIGINT):
        signals.signal(sig, handle)
    return lambda: state["stop"]
