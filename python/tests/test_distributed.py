"""Data-parallel training under torchrun (real `python -m torch.distributed.run` jobs of 2 gloo processes on
the tiny dataset, one torch thread each): with SyncBatchNorm two processes train what one does, to rounding;
without it they differ only by the batch statistics; a killed process leaves the run interrupted with which
process ended, resumable at another world size; a stop request stops every process at the same step; a batch
that does not split is refused; the workbench that started the engine ending stops the run; bench-ddp.

Every wait is on a condition (a file, a status) with a generous deadline, never on a fixed sleep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from runs import SRC, engine, new_run, tiny_config, tiny_store, train_args
from test_runs import validate_folder

from r2b_torch.lock import TrainingLock, now_iso
from r2b_torch.runfolder import RunFolder

STAGES = ["teacher", "tanh", "ban", "bnn"]
PER_EPOCH = 3
EPOCHS = 2
WAIT = 180  # seconds: a generous deadline for every condition on a shared 2-core machine


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tiny_store(tmp_path_factory.mktemp("ddp-home"))


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", **(extra or {})}
    env.pop("R2B_DEBUG", None)
    return env


def torchrun(home: Path, run_id: str, nproc: int, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """The workbench's torchrun command line (src/main/training/torch-engine.ts torchrunArgs), in its own
    process group."""
    command = [
        sys.executable,
        *("-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc-per-node", str(nproc)),
        *("--max-restarts", "0", "--module", "r2b_torch"),
        *train_args(home, run_id, *extra),
    ]
    return subprocess.Popen(
        command,
        env=_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(process: subprocess.Popen, timeout: float = WAIT) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"the job did not end within {timeout} s:\n{out}\n{err[-4000:]}")
    return process.returncode, out, err


def wait_for(condition, what: str, process: subprocess.Popen | None = None, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the job ended ({process.returncode}) before {what}:\n{out}\n{err[-4000:]}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def meta(folder: RunFolder) -> dict:
    return json.loads(folder.run_file.read_text())


def end_line(out: str) -> dict:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(lines) == 1, out
    return lines[0]


def steps_of(folder: RunFolder) -> list[dict]:
    return [line for line in folder.read_log() if line["kind"] == "step"]


def each_epoch_once(folder: RunFolder) -> None:
    log = folder.read_log()
    epochs = [(line["stage"], line["epoch"]) for line in log if line["kind"] == "epoch"]
    assert sorted(epochs) == sorted((s, e) for s in STAGES for e in range(EPOCHS)) and len(set(epochs)) == len(epochs)
    steps = [(line["stage"], line["step"]) for line in log if line["kind"] == "step"]
    assert len(set(steps)) == len(steps) == len(STAGES) * EPOCHS * PER_EPOCH
    checkpoints = [(line["stage"], line["epochsCompleted"]) for line in log if line["kind"] == "checkpoint"]
    assert len(set(checkpoints)) == len(checkpoints) == len(STAGES) * EPOCHS


def final_weights(folder: RunFolder, stage: str) -> dict[str, np.ndarray]:
    line = [line for line in folder.checkpoint_lines() if line["stage"] == stage and line["final"]][-1]
    checkpoint = folder.read_checkpoint(line)
    return {name: checkpoint.array(entry) for name, entry in checkpoint.entries().items()}


def trace(directory: Path, rank: int) -> list[str]:
    path = directory / f"rank-{rank}.steps"
    return path.read_text().splitlines() if path.exists() else []


# One-process reference runs (the same config, the plain `python -m r2b_torch train`), made once per module.
@pytest.fixture(scope="module")
def single(home) -> RunFolder:
    folder = new_run(home, tiny_config(), "one-process")
    code, out, err = finish(engine(*train_args(home, "one-process")))
    assert code == 0 and end_line(out)["status"] == "finished", err
    return folder


def test_two_processes_with_sync_batchnorm_train_what_one_does(home, single):
    """SyncBatchNorm: the global batch's statistics, DDP's averaged gradients and each image augmented as in
    the one-process batch (crop and flip in the teacher stage, mixup in tanh): every step's loss agrees with
    the one-process run's to 1e-4 (relative) and the teacher's and tanh stages' final weights to 1e-4 of each
    tensor's norm. The binary stages (sign activations and weights) are held only to finishing with finite
    losses: rounding-level differences flip signs near zero, and a flipped sign is a different network."""
    folder = new_run(home, tiny_config(), "sync-bn")
    code, out, err = finish(torchrun(home, "sync-bn", 2, "--sync-batchnorm"))
    assert code == 0 and end_line(out)["status"] == "finished", err
    each_epoch_once(folder)
    m = meta(folder)
    assert m["status"] == "finished"
    assert m["environment"]["distributed"] == {
        "worldSize": 2,
        "nodes": 1,
        "backend": "gloo",
        "perProcessBatch": 4,
        "syncBatchNorm": True,
    }
    assert m["environment"]["device"]["description"].startswith("2 processes × ")
    assert m["environment"]["device"]["description"].endswith("(gloo)")
    assert validate_folder(folder)

    ours = {(s["stage"], s["step"]): s for s in steps_of(folder)}
    theirs = {(s["stage"], s["step"]): s for s in steps_of(single)}
    assert ours.keys() == theirs.keys()
    for key, line in ours.items():
        if key[0] in ("teacher", "tanh"):
            for part, value in line["loss"].items():
                assert value == pytest.approx(theirs[key]["loss"][part], rel=1e-4, abs=1e-6), (key, part)
            assert line["learningRate"] == theirs[key]["learningRate"]
        else:
            assert all(np.isfinite(v) for v in line["loss"].values())
    for stage in ("teacher", "tanh"):
        a, b = final_weights(folder, stage), final_weights(single, stage)
        assert a.keys() == b.keys()
        for name in a:
            scale = max(float(np.linalg.norm(b[name])), 1e-6)
            assert float(np.linalg.norm(a[name] - b[name])) <= 1e-4 * scale, (stage, name)


def test_two_processes_without_sync_batchnorm_differ_only_by_batch_statistics(home, single):
    """Each process normalises with its share's statistics: the first step (same weights, same images) agrees
    with the one-process step only loosely (5% of the loss), the run finishes with every epoch once, and the
    moving statistics are the global batch's, so every process ends with the same model (checkpoints are of
    rank 0's, and every rank traced the same steps)."""
    folder = new_run(home, tiny_config(), "plain-bn")
    traced = home / "trace-plain-bn"
    code, out, err = finish(torchrun(home, "plain-bn", 2, env={"R2B_TRACE_DIR": str(traced)}))
    assert code == 0 and end_line(out)["status"] == "finished", err
    each_epoch_once(folder)
    m = meta(folder)
    assert m["environment"]["distributed"]["syncBatchNorm"] is False
    assert m["environment"]["distributed"]["worldSize"] == 2
    first = steps_of(folder)[0]
    reference = steps_of(single)[0]
    assert first["loss"]["total"] != reference["loss"]["total"]  # it is the share's statistics, not the batch's
    assert first["loss"]["total"] == pytest.approx(reference["loss"]["total"], rel=0.05)
    assert trace(traced, 0) == trace(traced, 1) and len(trace(traced, 0)) == len(STAGES) * EPOCHS * PER_EPOCH


@pytest.mark.parametrize("moment", ["paused", "training"])
def test_killed_process_leaves_the_run_interrupted_and_resumable(home, moment):
    """SIGKILL of the rank-1 process after the first checkpoint, either while the job is held by a pause
    request there (rank 0 waiting in the control exchange) or while it trains (rank 0 in a step's collectives):
    rank 0 marks the run interrupted, naming the process and how it ended, and torchrun ends the job non-zero;
    one process then resumes it from the last checkpoint to the end, every epoch once."""
    run_id = f"killed-{moment}"
    folder = new_run(home, tiny_config(), run_id)
    traced = home / f"trace-{run_id}"
    env = {"R2B_TRACE_DIR": str(traced)}
    if moment == "paused":
        env["R2B_REQUEST_PAUSE"] = "teacher:3"
    job = torchrun(home, run_id, 2, env=env)
    if moment == "paused":
        wait_for(lambda: meta(folder)["status"] == "paused", "the pause after the first checkpoint", job)
        assert [(c["stage"], c["epochsCompleted"]) for c in folder.checkpoint_lines()] == [("teacher", 1)]
    else:
        wait_for(lambda: folder.checkpoint_lines(), "the first checkpoint", job)
    pid = int((traced / "rank-1.pid").read_text())
    assert b"RANK=1" in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")  # the rank-1 process itself
    os.kill(pid, signal.SIGKILL)
    code, out, err = finish(job)
    assert code != 0
    m = meta(folder)
    assert m["status"] == "interrupted", (m["status"], m["error"], err[-3000:])
    assert m["error"] == "process 1 of 2 ended (killed by signal 9); resume continues from the last checkpoint"
    assert end_line(out) == {"run": run_id, "status": "interrupted", "error": m["error"]}
    resumable = folder.checkpoint_lines()

    folder.request_pause(False)
    code, out, err = finish(engine(*train_args(home, run_id)))
    assert code == 0 and end_line(out)["status"] == "finished", err
    assert meta(folder)["environment"]["distributed"] is None
    each_epoch_once(folder)
    log = folder.read_log()
    assert [line["kind"] for line in log].count("resumed") == 1
    resumed = next(line for line in log if line["kind"] == "resumed")
    assert (resumed["stage"], resumed["epochsCompleted"]) == (resumable[-1]["stage"], resumable[-1]["epochsCompleted"])


def test_stop_request_stops_every_process_at_the_same_step(home):
    """A stop request (written by rank 0's hook once teacher step 4 is logged, as a user would) stops both
    processes after that step; the run says stopped, its last checkpoint is the resume point, and two
    processes resume it to the end with every epoch once."""
    folder = new_run(home, tiny_config(), "stopped")
    traced = home / "trace-stopped"
    job = torchrun(home, "stopped", 2, env={"R2B_TRACE_DIR": str(traced), "R2B_REQUEST_STOP": "teacher:4"})
    code, out, err = finish(job)
    assert code == 0 and end_line(out)["status"] == "stopped", err
    m = meta(folder)
    assert m["status"] == "stopped" and m["error"] is None
    assert [s["status"] for s in m["stages"]] == ["stopped", "pending", "pending", "pending"]
    assert trace(traced, 0) == trace(traced, 1) == [f"teacher {i}" for i in range(5)]
    assert [s["step"] for s in steps_of(folder)] == [0, 1, 2, 3, 4]
    assert [(c["stage"], c["epochsCompleted"]) for c in folder.checkpoint_lines()] == [("teacher", 1)]
    assert validate_folder(folder)

    code, out, err = finish(torchrun(home, "stopped", 2))
    assert code == 0 and end_line(out)["status"] == "finished", err
    each_epoch_once(folder)


def test_a_batch_that_does_not_split_is_refused(home):
    """A stage batch of 9 over 2 processes: every process refuses before anything changes; rank 0 says why in
    one line (stderr, and the JSON line on stdout with status refused), each process exits 2 (torchrun itself
    then exits 1 and adds its summary)."""
    folder = new_run(home, tiny_config(stages__2__batchSize=9), "odd-batch")
    before = sorted((p.name, p.read_bytes()) for p in folder.path.rglob("*") if p.is_file())
    code, out, err = finish(torchrun(home, "odd-batch", 2))
    assert code != 0
    line = end_line(out)
    assert line["status"] == "refused"
    message = line["error"]
    assert "\n" not in message and "batch of 9" in message and "2 processes" in message
    assert "divides it" in message
    assert err.count(message) == 1
    assert "exitcode  : 2" in err and "Traceback" not in err.split("torch/distributed/elastic")[0]
    assert sorted((p.name, p.read_bytes()) for p in folder.path.rglob("*") if p.is_file()) == before


def test_engine_stops_when_the_workbench_that_started_it_ends(home):
    """--lock-held-by PID: the engine (one process here) checks about once a second that the workbench holding
    the lock is alive; once it is gone the run stops at a step boundary and says interrupted (resumable)."""
    folder = new_run(home, tiny_config(), "orphan")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        lock = TrainingLock(folder.runs_dir)
        lock.file.write_text(json.dumps({"pid": holder.pid, "what": "orphan", "since": now_iso()}))
        args = train_args(home, "orphan", "--lock-held-by", str(holder.pid))
        job = engine(*args, env={"R2B_REQUEST_PAUSE": "tanh:1"})
        wait_for(lambda: meta(folder)["status"] == "paused", "the pause in the tanh stage", job)
    finally:
        holder.kill()
        holder.wait()
    code, out, err = finish(job)
    assert code == 1, err
    m = meta(folder)
    assert m["status"] == "interrupted" and f"pid {holder.pid}" in m["error"] and "resume" in m["error"]
    assert end_line(out)["status"] == "interrupted"
    lock.file.unlink()
    folder.request_pause(False)
    code, out, err = finish(engine(*train_args(home, "orphan")))
    assert code == 0 and end_line(out)["status"] == "finished", err
    each_epoch_once(folder)


def test_bench_ddp_measures_scaling(home):
    """bench-ddp --json: images/s at 1 and 2 processes and the efficiency, from real torchrun jobs."""
    done = subprocess.run(
        [sys.executable, "-m", "r2b_torch", "bench-ddp", "--nproc", "1,2", "--json"]
        + ["--width", "0.0625", "--batch", "8", "--input", "16", "--steps", "2", "--warmup", "1", "--stage", "tanh"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [r["processes"] for r in result["runs"]] == [1, 2]
    assert result["runs"][0]["efficiency"] == 1.0
    assert all(r["imagesPerSecond"] > 0 for r in result["runs"])
    assert result["backend"] == "gloo"


def test_sigterm_to_the_job_stops_every_process_at_the_same_step(home):
    """SIGTERM to the job's process group (every process gets it, then torchrun forwards it again as it shuts
    down): the processes agree to stop at one step boundary, the run says stopped, and it resumes."""
    folder = new_run(home, tiny_config(), "sigterm")
    traced = home / "trace-sigterm"
    job = torchrun(home, "sigterm", 2, env={"R2B_TRACE_DIR": str(traced)})
    wait_for(lambda: folder.checkpoint_lines(), "the first checkpoint", job)
    os.killpg(job.pid, signal.SIGTERM)
    code, out, err = finish(job)
    m = meta(folder)
    assert m["status"] == "stopped", (m["status"], m["error"], err[-3000:])
    assert trace(traced, 0) == trace(traced, 1)
    assert len(steps_of(folder)) == len(trace(traced, 0))
    code, out, err = finish(torchrun(home, "sigterm", 2))
    assert code == 0 and end_line(out)["status"] == "finished", err
    each_epoch_once(folder)


def test_torchrun_with_one_process_is_the_one_process_engine(home):
    """torchrun --nproc-per-node 1 (WORLD_SIZE=1), --sync-batchnorm included: the one-process engine, with no
    distributed environment (stopped at its first step to keep it short)."""
    folder = new_run(home, tiny_config(), "torchrun-one")
    job = torchrun(home, "torchrun-one", 1, "--sync-batchnorm", env={"R2B_REQUEST_STOP": "teacher:0"})
    code, out, err = finish(job)
    assert code == 0 and end_line(out)["status"] == "stopped", err
    m = meta(folder)
    assert m["status"] == "stopped" and m["environment"]["distributed"] is None
    assert not m["environment"]["device"]["description"].startswith("1 processes")
