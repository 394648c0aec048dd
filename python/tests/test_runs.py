"""The run folder the engine writes (docs/run-format.md, format 2), end to end on a tiny dataset: the quick r2b
chain (teacher -> tanh -> ban -> bnn, 2 epochs of 3 steps each) writes a folder that follows the contract; a
process killed in each window of the protocol, then resumed, loses no epoch, repeats none and ends with the
same weights, bit for bit, as an uninterrupted run of the same seed; stop and pause requests; a format-1
folder is read and resumed; bad input fails in one line and leaves nothing half written."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from runs import engine, new_run, read_jsonl, run_engine, tiny_config, tiny_store, train_args

from r2b_torch.checkpoint import model_from_checkpoint
from r2b_torch.config import parse_run_config
from r2b_torch.data import open_dataset
from r2b_torch.lock import TrainingLock
from r2b_torch.models import TRANSFER_POINTS
from r2b_torch.runfolder import RunFolder, parse_log_line, snapshot_file
from r2b_torch.runner import TrainingFailed, TrainingRefused, train_run
from r2b_torch.schedule import schedule_multiplier
from r2b_torch.stage import probe_indices

STAGES = ["teacher", "tanh", "ban", "bnn"]
PER_EPOCH = 3
EPOCHS = 2
# Spatial size at each transfer point of a 16-pixel input with the CIFAR stem.
POINT_SIZES = [16, 16, 8, 8, 4, 4, 2, 2]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tiny_store(tmp_path_factory.mktemp("home"))


def train(home: Path, run_id: str, **options):
    return train_run(home / "runs" / run_id, home, device="cpu", threads=1, **options)


@pytest.fixture(scope="module")
def reference(home) -> RunFolder:
    """The uninterrupted run every interrupted one must reproduce."""
    folder = new_run(home, tiny_config(), "reference")
    seen = []

    def on_record(record):
        # Every record is on disk before anyone is told of it.
        if record["kind"] == "checkpoint":
            line = folder.read_log()[-1]
            assert line["kind"] == "checkpoint" and line["epochsCompleted"] == record["epochsCompleted"]
        seen.append(record["kind"])

    outcome = train(home, "reference", on_record=on_record)
    assert (outcome.status, outcome.error) == ("finished", None)
    assert seen.count("step") == len(STAGES) * EPOCHS * PER_EPOCH
    return folder


def checkpoint_sums(folder: RunFolder) -> dict[tuple[str, int], str]:
    return {(line["stage"], line["epochsCompleted"]): line["sha256"] for line in folder.checkpoint_lines()}


def check_contract(folder: RunFolder, resumed: bool = False) -> None:
    """Everything docs/run-format.md promises about a finished run folder."""
    meta = json.loads(folder.run_file.read_text())
    config = parse_run_config(meta["config"])
    assert meta["version"] == 2 and meta["id"] == folder.id and meta["status"] == "finished" and meta["error"] is None
    env = meta["environment"]
    assert env["engine"] == "torch" and env["backend"] is None and env["device"]["kind"] == "cpu"
    assert {"python", "torch"} <= set(env["versions"]) and env["distributed"] is None and env["platform"]
    assert [s["name"] for s in meta["stages"]] == STAGES
    for s in meta["stages"]:
        assert s["status"] == "finished" and s["epochs"] == s["epochsCompleted"] == EPOCHS

    # events.jsonl: complete lines, each a valid record, in the order of the protocol.
    text = folder.log_file.read_text()
    assert text.endswith("\n")
    lines = [json.loads(line) for line in text.splitlines()]
    assert all(parse_log_line(dict(line)) for line in lines)
    assert all(
        "path" not in line and "epoch" not in line for line in lines if line["kind"] in ("checkpoint", "resumed")
    )
    assert (sum(line["kind"] == "resumed" for line in lines) > 0) == resumed
    steps = {(line["stage"], line["step"]): line for line in lines if line["kind"] == "step"}
    epochs = {(line["stage"], line["epoch"]): i for i, line in enumerate(lines) if line["kind"] == "epoch"}
    checkpoints = {
        (line["stage"], line["epochsCompleted"]): i for i, line in enumerate(lines) if line["kind"] == "checkpoint"
    }
    ends = [i for i, line in enumerate(lines) if line["kind"] == "stage-end"]
    assert len(steps) == sum(line["kind"] == "step" for line in lines) == len(STAGES) * EPOCHS * PER_EPOCH
    assert len(epochs) == sum(line["kind"] == "epoch" for line in lines) == len(STAGES) * EPOCHS
    assert len(checkpoints) == sum(line["kind"] == "checkpoint" for line in lines) == len(STAGES) * EPOCHS
    last_end = -1
    for index, (name, spec) in enumerate(zip(STAGES, config.stages)):
        starts = [i for i, line in enumerate(lines) if line["kind"] == "stage-start" and line["stage"] == name]
        assert starts and starts[0] > last_end
        for i in starts:
            start = lines[i]
            assert (start["stageIndex"], start["epochs"], start["stepsPerEpoch"]) == (index, EPOCHS, PER_EPOCH)
            assert start["teacher"] == (None if name == "teacher" else spec.teacher)
        for epoch in range(EPOCHS):
            at = epochs[(name, epoch)]
            for step in range(epoch * PER_EPOCH, (epoch + 1) * PER_EPOCH):
                line = steps[(name, step)]
                assert line["epoch"] == epoch and lines.index(line) < at
                multiplier = schedule_multiplier(spec.schedule, step / PER_EPOCH, spec.epochs)
                assert line["learningRate"] == pytest.approx(spec.optimizer.learning_rate * multiplier, rel=1e-12)
                assert all(np.isfinite(v) for v in line["loss"].values())
            record = lines[at]
            for part in ("train", "test"):
                assert 0 <= record[part]["top1"] <= record[part]["top5"] <= 1
            # testLimit 24: the test accuracy is a count out of 24 images.
            assert record["test"]["top1"] * 24 == pytest.approx(round(record["test"]["top1"] * 24))
            flips = record["flipRatios"]
            assert [f["layer"] for f in flips] == (
                [] if name == "teacher" else [f"block_{b}{h}.conv" for b in range(1, 9) for h in "ab"]
            )
            checkpoint = lines[checkpoints[(name, epoch + 1)]]
            assert checkpoints[(name, epoch + 1)] > at
            assert checkpoint["step"] == (epoch + 1) * PER_EPOCH and checkpoint["final"] == (epoch + 1 == EPOCHS)
        end = [i for i in ends if lines[i]["stage"] == name]
        assert len(end) >= 1
        final_end = lines[end[-1]]
        assert end[-1] > checkpoints[(name, EPOCHS)] and final_end["stopped"] is False
        assert final_end["test"] == lines[epochs[(name, EPOCHS - 1)]]["test"]
        stage_meta = meta["stages"][index]
        assert (stage_meta["testTop1"], stage_meta["testTop5"]) == (
            final_end["test"]["top1"],
            final_end["test"]["top5"],
        )
        last_end = end[-1]

    # checkpoints: one folder per line, no temp folders, checksums and manifests as the lines say.
    on_disk = {(p.parent.name, p.name) for p in folder.checkpoints.glob("*/*")}
    assert on_disk == {(stage, f"e{n}") for stage, n in checkpoints}
    for i in checkpoints.values():
        line = lines[i]
        directory = folder.checkpoints / line["stage"] / f"e{line['epochsCompleted']}"
        data = (directory / "data.bin").read_bytes()
        assert hashlib.sha256(data).hexdigest() == line["sha256"] and len(data) == line["bytes"]
        manifest = json.loads((directory / "manifest.json").read_text())
        assert manifest["sha256"] == line["sha256"] and manifest["bytes"] == line["bytes"]
        assert manifest["version"] == 2 and manifest["stage"] == line["stage"]
        assert manifest["epochsCompleted"] == line["epochsCompleted"] and "epoch" not in manifest
        assert manifest["step"] == line["step"]
        assert {t["group"] for t in manifest["tensors"]} == {"weights", "state", "optimizer"}

    # snapshots: attention after every epoch, gates in the gated stages, payloads of the shapes the index says.
    index = [json.loads(line) for line in (folder.snapshots / "index.jsonl").read_text().splitlines()]
    keys = [(e["stage"], e["epochsCompleted"], e["kind"]) for e in index]
    expected = {
        (s, n, k)
        for s in STAGES
        for n in range(1, EPOCHS + 1)
        for k in ("attention", "gates")
        if not (s == "teacher" and k == "gates")
    }
    assert len(keys) == len(set(keys)) and set(keys) == expected
    probes = probe_indices(config.eval.probes, 32)
    files = {p.relative_to(folder.snapshots).as_posix() for p in folder.snapshots.glob("*/*.bin")}
    assert files == {snapshot_file(s, k, n) for s, n, k in keys}
    for entry in index:
        assert entry["file"] == snapshot_file(entry["stage"], entry["kind"], entry["epochsCompleted"])
        assert entry["probes"] == probes == [0, 10, 21]
        arrays = folder.read_snapshot(entry)
        payload = (folder.snapshots / entry["file"]).stat().st_size // 4
        assert sum(a.size for a in arrays.values()) == payload
        if entry["kind"] == "attention":
            assert entry["form"] == "larq" and [p["point"] for p in entry["points"]] == TRANSFER_POINTS
            for point, size in zip(entry["points"], POINT_SIZES):
                assert point["student"]["shape"] == [3, size, size]
                assert (point["teacher"] is None) == (entry["stage"] == "teacher")
                maps = arrays[f"{point['point']}/student"]
                assert np.all(maps >= 0) and np.allclose(maps.reshape(3, -1).max(axis=1), 1, atol=1e-6)
        else:
            assert entry["subset"] == 16  # gateSubset 10, taken in whole evaluation batches of 8
            assert [g["block"] for g in entry["gates"]] == [f"block_{b}{h}" for b in range(1, 9) for h in "ab"]
            for g in entry["gates"]:
                channels = g["mean"]["shape"][0]
                assert g["perProbe"]["shape"] == [3, channels]
                for part in ("mean", "perProbe"):
                    values = arrays[f"{g['block']}/{part}"]
                    assert np.all((values > 0) & (values < 1))


def test_chain_writes_the_contract(home, reference):
    check_contract(reference)
    # The final student loads from its checkpoint and is the network the run reported.
    line = [line for line in reference.checkpoint_lines() if line["stage"] == "bnn" and line["final"]][-1]
    model = model_from_checkpoint(reference.read_checkpoint(line))
    assert model.build.weights == "sign" and model.build.activation == "sign"
    from r2b_torch.data import to_torch
    from r2b_torch.stage import evaluate

    reader = open_dataset("tiny", home)
    result = evaluate(model, (to_torch(b) for b in reader.test_batches(8, limit=24)))
    assert result.accuracy.top1 == json.loads(reference.run_file.read_text())["stages"][3]["testTop1"]
    assert not (home / "runs" / ".training.lock").exists()


def same_run(folder: RunFolder, reference: RunFolder) -> None:
    """No epoch lost or repeated, and every checkpoint (so every weight, BN statistic and moment) bit-identical."""
    check_contract(folder, resumed=True)
    assert checkpoint_sums(folder) == checkpoint_sums(reference)

    def losses(f):
        return {(line["stage"], line["step"]): line["loss"] for line in f.read_log() if line["kind"] == "step"}

    assert losses(folder) == losses(reference)


@pytest.mark.parametrize(
    "fault",
    ["after-step:ban:4", "before-checkpoint-rename:tanh:1", "after-checkpoint-rename:bnn:2"],
)
def test_killed_process_resumes_to_the_same_run(home, reference, fault):
    run_id = "kill-" + fault.split(":")[0]
    folder = new_run(home, tiny_config(), run_id)
    code, out, err = run_engine(*train_args(home, run_id), env={"R2B_FAULT": fault})
    assert code == -9, err
    point, stage, n = fault.rsplit(":", 2)
    meta = json.loads(folder.run_file.read_text())
    assert meta["status"] == "running"  # nobody said otherwise: the workbench reads this as interrupted
    lock = TrainingLock(home / "runs")
    assert lock.read() is not None and lock.holder() is None  # a stale lock, taken over below
    temps = list(folder.checkpoints.glob("*/*.tmp"))
    assert bool(temps) == (point == "before-checkpoint-rename")
    if point == "after-checkpoint-rename":
        assert (folder.checkpoints / stage / f"e{n}").is_dir()  # in place, but not committed by a log line
        assert not any(c["stage"] == stage and c["epochsCompleted"] == int(n) for c in folder.checkpoint_lines())

    outcome = train(home, run_id)
    assert outcome.status == "finished"
    same_run(folder, reference)
    log = folder.read_log()
    (at,) = [i for i, line in enumerate(log) if line["kind"] == "resumed"]
    # After the marker, the interrupted stage starts again at its checkpoint's epoch, or the next stage at 0.
    marker, restart = log[at], log[at + 1]
    assert log[at - 1]["kind"] in ("checkpoint", "stage-end") and restart["kind"] == "stage-start"
    if restart["stage"] == marker["stage"]:
        assert restart["startEpoch"] == marker["epochsCompleted"] < EPOCHS
    else:
        assert restart["startEpoch"] == 0 and marker["epochsCompleted"] == EPOCHS


def test_externally_killed_process_resumes_to_the_same_run(home, reference):
    folder = new_run(home, tiny_config(), "kill-external")
    process = engine(*train_args(home, "kill-external"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if sum(line["kind"] == "checkpoint" for line in read_jsonl(folder.log_file)) >= 3:
            break
        time.sleep(0.01)
    process.kill()
    process.communicate()
    assert json.loads(folder.run_file.read_text())["status"] == "running"
    assert train(home, "kill-external").status == "finished"
    same_run(folder, reference)


def stop_at(folder: RunFolder, stage: str, step: int):
    def on_record(record):
        if record["kind"] == "step" and record["stage"] == stage and record["step"] == step:
            folder.request_stop()

    return on_record


def test_stop_request_stops_at_the_next_step_and_resumes(home, reference):
    folder = new_run(home, tiny_config(), "stopped")
    outcome = train(home, "stopped", on_record=stop_at(folder, "tanh", 4))
    assert (outcome.status, outcome.error) == ("stopped", None)
    meta = json.loads(folder.run_file.read_text())
    assert meta["status"] == "stopped"
    assert [s["status"] for s in meta["stages"]] == ["finished", "stopped", "pending", "pending"]
    assert [s["epochsCompleted"] for s in meta["stages"]] == [2, 1, 0, 0]
    log = folder.read_log()
    tanh_steps = [line["step"] for line in log if line["kind"] == "step" and line["stage"] == "tanh"]
    assert tanh_steps == [0, 1, 2, 3, 4]  # the step after the request did not run
    end = log[-1]
    assert end["kind"] == "stage-end" and end["stage"] == "tanh" and end["stopped"] is True
    assert end["test"] == [line for line in log if line["kind"] == "epoch"][-1]["test"]  # this session's last
    assert meta["stages"][1]["testTop1"] == end["test"]["top1"]

    outcome = train(home, "stopped")
    assert outcome.status == "finished"
    assert not folder.stop_requested()
    same_run(folder, reference)


def sgd_teacher_config() -> dict:
    """The tiny chain's teacher alone (2 epochs of 3 steps), trained with SGD and momentum."""
    config = tiny_config(
        stages__0__optimizer__kind="sgd", stages__0__optimizer__momentum=0.9, stages__0__optimizer__learningRate=0.05
    )
    config["stages"] = config["stages"][:1]
    return config


def test_sgd_run_stopped_mid_epoch_resumes_with_its_velocity(home):
    """A stop in the second epoch resumes from the first epoch's checkpoint, velocity included: the resumed run
    ends with the checkpoints, bit for bit, and the losses of an uninterrupted one (momentum 0.9, so a lost
    velocity would change every later step)."""
    reference = new_run(home, sgd_teacher_config(), "sgd-reference")
    assert train(home, "sgd-reference").status == "finished"
    folder = new_run(home, sgd_teacher_config(), "sgd-stopped")
    assert train(home, "sgd-stopped", on_record=stop_at(folder, "teacher", 4)).status == "stopped"
    (line,) = folder.checkpoint_lines()
    checkpoint = folder.read_checkpoint(line)
    velocity = [t for t in checkpoint.manifest["tensors"] if t["group"] == "optimizer"]
    weights = [t["name"] for t in checkpoint.manifest["tensors"] if t["group"] == "weights"]
    assert [t["name"] for t in velocity] == [f"velocity/{name}" for name in weights]
    assert any(np.abs(checkpoint.array(t)).max() > 0 for t in velocity)
    assert train(home, "sgd-stopped").status == "finished"
    assert checkpoint_sums(folder) == checkpoint_sums(reference)

    def losses(f):
        return {(line["stage"], line["step"]): line["loss"] for line in f.read_log() if line["kind"] == "step"}

    assert losses(folder) == losses(reference)


def test_pause_request_holds_between_steps(home, reference):
    folder = new_run(home, tiny_config(), "paused")
    seen: list[str] = []

    def release():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = json.loads(folder.run_file.read_text())["status"]
            if status == "paused":
                seen.append(status)
                steps = [line for line in read_jsonl(folder.log_file) if line["kind"] == "step"]
                seen.append(f"{steps[-1]['stage']}:{steps[-1]['step']}")
                time.sleep(0.3)
                assert len([line for line in read_jsonl(folder.log_file) if line["kind"] == "step"]) == len(steps)
                folder.request_pause(False)
                return
            time.sleep(0.02)

    helper = threading.Thread(target=release)

    def on_record(record):
        if record["kind"] == "step" and record["stage"] == "ban" and record["step"] == 1:
            folder.request_pause()
            helper.start()

    outcome = train(home, "paused", on_record=on_record, poll_seconds=0.02)
    helper.join()
    assert seen == ["paused", "ban:1"]
    assert outcome.status == "finished" and json.loads(folder.run_file.read_text())["status"] == "finished"
    assert checkpoint_sums(folder) == checkpoint_sums(reference)


def to_format1(folder: RunFolder) -> None:
    """Rewrites a format-2 folder with format 1's names, as releases before docs/run-format.md wrote it."""
    meta = json.loads(folder.run_file.read_text())
    meta["version"] = 1
    meta["environment"] = {"backend": None, "node": "22.12.0", "platform": "linux"}
    for s in meta["stages"]:
        s["epochsDone"] = s.pop("epochsCompleted")
    folder.run_file.write_text(json.dumps(meta, indent=2) + "\n")
    lines = []
    for line in read_jsonl(folder.log_file):
        if line["kind"] == "checkpoint":
            n = line.pop("epochsCompleted")
            line = {**line, "epoch": n, "path": f"{line['stage']}/e{n}"}
        elif line["kind"] == "resumed":
            line = {"kind": "resumed", "stage": line["stage"], "epoch": line["epochsCompleted"]}
        lines.append(json.dumps(line))
    folder.log_file.write_text("".join(line + "\n" for line in lines))
    entries = []
    for e in read_jsonl(folder.snapshots / "index.jsonl"):
        epoch = e["epochsCompleted"] - 1
        old = f"{e['stage']}/e{epoch}-{e['kind']}.bin"
        (folder.snapshots / e["file"]).rename(folder.snapshots / old)
        arrays = []
        if e["kind"] == "attention":
            meta1 = {"form": e["form"]}
            for p in e["points"]:
                arrays.append({"name": f"{p['point']}/student", **p["student"]})
                if p["teacher"] is not None:
                    arrays.append({"name": f"{p['point']}/teacher", **p["teacher"]})
        else:
            meta1 = {"subset": e["subset"]}
            for g in e["gates"]:
                arrays += [
                    {"name": f"{g['block']}/mean", **g["mean"]},
                    {"name": f"{g['block']}/probes", **g["perProbe"]},
                ]
        entries.append(
            {
                "kind": e["kind"],
                "stage": e["stage"],
                "epoch": epoch,
                "probes": e["probes"],
                "file": old,
                "meta": meta1,
                "arrays": arrays,
            }
        )
    (folder.snapshots / "index.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    for manifest_file in folder.checkpoints.glob("*/*/manifest.json"):
        manifest = json.loads(manifest_file.read_text())
        manifest["version"] = 1
        manifest["epoch"] = manifest.pop("epochsCompleted")
        manifest_file.write_text(json.dumps(manifest, indent=2) + "\n")


def test_format1_folder_is_read_and_resumed(home, reference):
    folder = new_run(home, tiny_config(), "format-1")
    assert train(home, "format-1", on_record=stop_at(folder, "ban", 4)).status == "stopped"
    before = {
        "log": folder.read_log(),
        "index": folder.snapshot_index(),
        "snapshots": {
            (e["stage"], e["epochsCompleted"], e["kind"]): folder.read_snapshot(e) for e in folder.snapshot_index()
        },
    }
    to_format1(folder)
    assert '"epochsDone"' in folder.run_file.read_text() and '"path"' in folder.log_file.read_text()

    # Read and migrated record by record: the same records as before the rewrite.
    meta = folder.read_meta()
    assert meta["version"] == 2 and [s["epochsCompleted"] for s in meta["stages"]] == [2, 2, 1, 0]
    assert meta["environment"]["engine"] == "tfjs" and meta["environment"]["versions"] == {"node": "22.12.0"}
    assert meta["environment"]["platform"] == "linux" and meta["environment"]["distributed"] is None
    assert folder.read_log() == before["log"]
    index = folder.snapshot_index()
    assert [{k: v for k, v in e.items() if k != "format"} for e in index] == before["index"]
    for e in index:
        arrays = folder.read_snapshot(e)
        expected = before["snapshots"][(e["stage"], e["epochsCompleted"], e["kind"])]
        assert arrays.keys() == expected.keys() and all(np.array_equal(arrays[k], expected[k]) for k in arrays)
    line = folder.checkpoint_lines()[-1]
    assert folder.read_checkpoint(line).epochs_completed == line["epochsCompleted"] == 1

    # Resumed by this engine: rewritten in format 2 (a folder is never mixed), then trained to the same end.
    assert train(home, "format-1").status == "finished"
    assert not list(folder.snapshots.glob("*/e*-*.bin"))
    same_run(folder, reference)
    validate_folder(folder)


def test_a_loss_that_is_not_finite_fails_with_advice(home):
    config = tiny_config(**{"stages__0__optimizer__learningRate": 1e38})
    folder = new_run(home, config, "diverges")
    outcome = train(home, "diverges")
    assert outcome.status == "failed"
    log = folder.read_log()
    bad = [line for line in log if line["kind"] == "step" and line["loss"]["total"] is None]
    assert bad and bad[0] is [line for line in log if line["kind"] == "step"][-1]  # stopped right after it
    assert outcome.error == (
        f"the loss became NaN at stage teacher, step {bad[0]['step']}: lower the learning rate "
        "(e.g. --set stages.<i>.optimizer.learningRate=...) and resume or start again"
    )
    assert '"total":null' in folder.log_file.read_text()
    assert not [line for line in log if line["kind"] == "checkpoint" and line["step"] >= bad[0]["step"]]
    meta = json.loads(folder.run_file.read_text())
    assert meta["status"] == "failed" and meta["error"] == outcome.error
    assert meta["stages"][0]["status"] == "stopped"


def snapshot_of(folder: RunFolder) -> dict[str, bytes]:
    return {p.relative_to(folder.path).as_posix(): p.read_bytes() for p in folder.path.rglob("*") if p.is_file()}


def one_line_failure(code: int, out: str, err: str, expected_code: int, text: str) -> None:
    assert code == expected_code, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert text in err, err


def run_all(*commands: list[str]) -> list[tuple[int, str, str]]:
    """Engine commands run side by side (each is mostly PyTorch's import time)."""
    processes = [engine(*args) for args in commands]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        results.append((process.returncode, out, err))
    return results


def test_bad_input_fails_in_one_line_and_writes_nothing_half(home, reference):
    # A missing dataset, and a config whose data does not match its dataset: the run says failed, nothing else.
    cases = [
        ("no-dataset", tiny_config(**{"data__dataset": "gone"}), 'dataset "gone" of run no-dataset cannot be read'),
        (
            "mismatch",
            tiny_config(**{"data__inputSize": 28}),
            "the data.* settings must match dataset tiny (16×16×1, 4 classes)",
        ),
    ]
    # Each in a runs folder of its own (its own training lock), so they can run side by side.
    folders = {run_id: new_run(home, config, run_id, runs=f"runs-{run_id}") for run_id, config, _ in cases}

    # A corrupted checkpoint: refused before the log is rolled back or anything is appended.
    shutil.copytree(reference.path, home / "runs-corrupt" / "corrupt")
    corrupt = RunFolder(home / "runs-corrupt" / "corrupt")
    meta = json.loads(corrupt.run_file.read_text())
    meta.update(id="corrupt", status="stopped")
    corrupt.run_file.write_text(json.dumps(meta, indent=2) + "\n")
    lines = corrupt.log_file.read_text().splitlines(keepends=True)
    cut = max(
        i for i, line in enumerate(lines) if '"checkpoint"' in line and '"bnn"' in line and '"final":false' in line
    )
    corrupt.log_file.write_text("".join(lines[: cut + 1]))
    data = corrupt.checkpoints / "bnn" / "e1" / "data.bin"
    raw = bytearray(data.read_bytes())
    raw[100] ^= 0x40
    data.write_bytes(bytes(raw))
    folders["corrupt"] = corrupt

    before = {run_id: snapshot_of(folder) for run_id, folder in folders.items()}
    finished = snapshot_of(reference)
    results = run_all(
        *[train_args(home, run_id, runs=f"runs-{run_id}") for run_id in folders],
        train_args(home, "reference"),
        ["train", "--run-dir", str(home / "runs" / "nope"), "--threads", "1"],
        ["bench-step", "--width", "0", "--batch", "4"],
    )
    texts = [text for _, _, text in cases] + ["checkpoint bnn/e1 of run corrupt is corrupted (checksum mismatch"]
    for (run_id, folder), (code, out, err), text in zip(folders.items(), results, texts):
        one_line_failure(code, out, err, 1, text)
        after = snapshot_of(folder)
        unchanged = {k: v for k, v in before[run_id].items() if k != "run.json"}
        assert {k: v for k, v in after.items() if k != "run.json"} == unchanged
        meta = json.loads(after["run.json"])
        assert meta["status"] == "failed" and text in meta["error"]
    # Refusals change nothing at all: a finished run; bad usage.
    one_line_failure(*results[3], 2, "run reference has finished: there is nothing to resume")
    assert snapshot_of(reference) == finished
    one_line_failure(*results[4], 2, "is missing")
    one_line_failure(*results[5], 2, "--width must be positive")

    # A run another live process trains; a lock that is not what --lock-held-by says.
    lock = home / "runs-mismatch" / ".training.lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "what": "mismatch", "since": "2026-12-01T00:00:00.000Z"}))
    try:
        held = snapshot_of(folders["mismatch"])
        busy, wrong = run_all(
            train_args(home, "mismatch", runs="runs-mismatch"),
            train_args(home, "mismatch", "--lock-held-by", "1", runs="runs-mismatch"),
        )
        one_line_failure(*busy, 2, f"another workbench process (pid {os.getpid()}) is training run mismatch")
        one_line_failure(*wrong, 2, f"the training lock is held by pid {os.getpid()} for run mismatch, not by pid 1")
        assert snapshot_of(folders["mismatch"]) == held
    finally:
        lock.unlink()


def test_engine_started_by_the_workbench_keeps_its_lock(home, reference):
    folder = new_run(home, tiny_config(), "held")
    lock = home / "runs" / ".training.lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "what": "held", "since": "2026-12-01T00:00:00.000Z"}))
    try:
        code, out, err = run_engine(*train_args(home, "held", "--lock-held-by", str(os.getpid())))
        assert code == 0, err
        assert json.loads(out.splitlines()[-1]) == {"run": "held", "status": "finished", "error": None}
        assert json.loads(lock.read_text())["pid"] == os.getpid()  # still the parent's
    finally:
        lock.unlink()
    assert checkpoint_sums(folder) == checkpoint_sums(reference)


def test_refusals_in_process(home):
    with pytest.raises(TrainingRefused, match="not a run id"):
        train_run(home / "runs" / "Not_An_Id", home)
    folder = new_run(home, tiny_config(**{"data__dataset": "gone"}), "gone-in-process")
    with pytest.raises(TrainingFailed, match='dataset "gone"'):
        train(home, folder.id)


def schema_dir() -> Path | None:
    """docs/schemas (generated from src/shared by `npm run schemas`): in the repository, or R2B_SCHEMAS."""
    for candidate in (os.environ.get("R2B_SCHEMAS"), Path(__file__).resolve().parents[2] / "docs" / "schemas"):
        if candidate and (Path(candidate) / "run-meta.schema.json").exists():
            return Path(candidate)
    return None


def schema_validators() -> dict | None:
    """jsonschema validators of the generated schemas, or None when jsonschema or the schemas are missing."""
    try:
        import jsonschema
    except ImportError:
        return None
    import re

    directory = schema_dir()
    if directory is None:
        return None

    def pattern(validator, value, instance, schema):
        # zod writes JavaScript regexes; \p{Cc} (control characters) has no Python spelling.
        if isinstance(instance, str):
            python = value.replace(r"\p{Cc}", r"\x00-\x1f\x7f-\x9f")
            if not re.search(python, instance):
                yield jsonschema.ValidationError(f"{instance!r} does not match {value!r}")

    cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": pattern})
    names = ("run-meta", "log-line", "snapshot-index-entry", "checkpoint-manifest")
    return {name: cls(json.loads((directory / f"{name}.schema.json").read_text())) for name in names}


def validate_folder(folder: RunFolder) -> bool:
    """Every JSON document of a run folder against docs/schemas; False when they cannot be checked here."""
    validators = schema_validators()
    if validators is None:
        return False
    validators["run-meta"].validate(json.loads(folder.run_file.read_text()))
    for line in read_jsonl(folder.log_file):
        validators["log-line"].validate(line)
    index = folder.snapshots / "index.jsonl"
    for entry in read_jsonl(index) if index.exists() else []:
        validators["snapshot-index-entry"].validate(entry)
    for manifest in folder.checkpoints.glob("*/*/manifest.json"):
        validators["checkpoint-manifest"].validate(json.loads(manifest.read_text()))
    return True


def test_folders_match_the_json_schemas(home, reference):
    """Every JSON document the engine writes validates against the workbench's generated schemas: run.json
    (finished, stopped, failed), every log line, every snapshot index entry, every checkpoint manifest."""
    pytest.importorskip("jsonschema", reason="jsonschema is not installed (pip install jsonschema)")
    if schema_dir() is None:
        pytest.skip("no docs/schemas here (set R2B_SCHEMAS=<repo>/docs/schemas)")
    stopped = new_run(home, tiny_config(), "schema-stopped")
    train(home, "schema-stopped", on_record=stop_at(stopped, "ban", 1))
    failed = new_run(home, tiny_config(**{"stages__0__optimizer__learningRate": 1e38}), "schema-failed")
    train(home, "schema-failed")
    for folder, status in ((reference, "finished"), (stopped, "stopped"), (failed, "failed")):
        assert json.loads(folder.run_file.read_text())["status"] == status
        assert validate_folder(folder)


def test_quick_r2b_literal_is_the_workbench_preset():
    """tests/runs.py keeps the quick r2b chain as the workbench resolves it; this holds it to makeRunConfig."""
    from runs import QUICK_R2B

    from conftest import run_tsx

    resolved = json.loads(run_tsx("test/conformance/preset.ts", "quick", "r2b"))
    # Compared as the engine reads them (keys the engine does not use, such as `engine`, are dropped).
    assert parse_run_config(resolved) == parse_run_config(QUICK_R2B)


def test_killed_after_the_last_checkpoint_line_resumes_to_finished(home, reference):
    """The window between the final checkpoint line and the stage-end: nothing is left to train."""
    shutil.copytree(reference.path, home / "runs" / "last-line")
    folder = RunFolder(home / "runs" / "last-line")
    meta = json.loads(folder.run_file.read_text())
    meta.update(id="last-line", status="running")
    meta["stages"][3].update(status="running")
    folder.run_file.write_text(json.dumps(meta, indent=2) + "\n")
    lines = folder.log_file.read_text().splitlines(keepends=True)
    folder.log_file.write_text("".join(lines[:-1]))  # the bnn stage-end never written
    assert train(home, "last-line").status == "finished"
    meta = json.loads(folder.run_file.read_text())
    assert [s["status"] for s in meta["stages"]] == ["finished"] * 4
    log = folder.read_log()
    assert log[-1] == {"kind": "resumed", "stage": "bnn", "epochsCompleted": 2}
    assert checkpoint_sums(folder) == checkpoint_sums(reference)


def test_sigterm_while_paused_stops_the_run(home):
    """The command line: a pause request holds the run (status paused), SIGTERM then stops it at once."""
    import signal

    folder = new_run(home, tiny_config(), "sigterm")
    folder.request_pause()
    process = engine(*train_args(home, "sigterm"))
    deadline = time.monotonic() + 60
    while json.loads(folder.run_file.read_text())["status"] != "paused" and time.monotonic() < deadline:
        time.sleep(0.02)
    held = read_jsonl(folder.log_file)
    assert [line["kind"] for line in held] == ["stage-start"]  # held at the first boundary, as tfjs's job does
    time.sleep(0.3)
    assert read_jsonl(folder.log_file) == held
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert json.loads(out.splitlines()[-1]) == {"run": "sigterm", "status": "stopped", "error": None}
    meta = json.loads(folder.run_file.read_text())
    assert meta["status"] == "stopped" and meta["stages"][0]["status"] == "stopped"
    assert [line["kind"] for line in read_jsonl(folder.log_file)] == ["stage-start", "stage-end"]
    assert not (home / "runs" / ".training.lock").exists()


def test_an_error_during_training_fails_the_run_in_one_line(home):
    folder = new_run(home, tiny_config(), "boom")

    def on_record(record):
        if record["kind"] == "step" and record["stage"] == "tanh" and record["step"] == 1:
            raise RuntimeError("boom\nsecond line")

    with pytest.raises(TrainingFailed, match="^RuntimeError: boom$"):
        train(home, "boom", on_record=on_record)
    meta = json.loads(folder.run_file.read_text())
    assert (meta["status"], meta["error"]) == ("failed", "RuntimeError: boom")
    assert [s["status"] for s in meta["stages"]] == ["finished", "stopped", "pending", "pending"]
    assert not (home / "runs" / ".training.lock").exists()
    # And it resumes from its last checkpoint like any other.
    assert train(home, "boom").status == "finished"
