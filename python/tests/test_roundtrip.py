"""PyTorch -> checkpoint -> tfjs: models built and trained a few steps here (torch's own seeded init, so
nothing tfjs computed) are saved in the project's format; the tfjs engine (test/conformance/roundtrip.ts)
builds each from its checkpoint's ModelBuild, restores weights, BN statistics and the optimiser's state (Adam's
moments; SGD's velocity for the SGD model), computes logits, attention maps and gates, and saves the checkpoint
again, which must be byte-identical."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import run_tsx
from r2b_torch import layout as L
from r2b_torch.attention import attention_map
from r2b_torch.checkpoint import read_checkpoint_dir, save_checkpoint, write_checkpoint_dir
from r2b_torch.config import parse_run_config
from r2b_torch.layers import forward_context
from r2b_torch.models import TRANSFER_POINTS
from r2b_torch.stage import build_stage, train_step
from support import check_close, read_bundle, write_bundle

MODELS = {
    "teacher-imagenet": ({"stem": "imagenet"}, {"architecture": "resnet"}, 28, 3),
    "bnn-gate-cifar": (
        {"stem": "cifar", "binaryPadding": "one"},
        {"activation": "sign", "weights": "sign", "scaling": "gate"},
        32,
        3,
    ),
    "bnn-learned-bds": (
        {"stem": "cifar", "downsample": "binary", "weightScale": "learned", "binaryPadding": "zero"},
        {"activation": "sign", "weights": "sign", "scaling": "learned"},
        28,
        1,
    ),
    "tanh-none": ({"stem": "imagenet"}, {"activation": "tanh", "weights": "real", "scaling": "none"}, 32, 1),
    "teacher-sgd-cifar": ({"stem": "cifar"}, {"architecture": "resnet"}, 28, 1),
}
ADAM = {"learningRate": 5e-3, "weightDecay": 1e-4}
OPTIMIZERS = {"teacher-sgd-cifar": {"kind": "sgd", "learningRate": 0.05, "momentum": 0.9, "weightDecay": 1e-4}}


def make_config(model: dict, student: dict, size: int, channels: int, optimizer: dict):
    return parse_run_config(
        {
            "seed": 3,
            "data": {"inputSize": size, "channels": channels, "classes": 10},
            "model": {"width": 0.125, "bnMomentum": 0.8, "preluInit": 0.1, **model},
            "stages": [{"name": "s", "student": student, "optimizer": optimizer}],
        }
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each model trained three steps in torch, saved with its optimiser's state; then the tfjs script over all."""
    root = tmp_path_factory.mktemp("roundtrip")
    out = {}
    generator = torch.Generator().manual_seed(0)
    for name, (model_spec, student, size, channels) in MODELS.items():
        config = make_config(model_spec, student, size, channels, OPTIMIZERS.get(name, ADAM))
        stage = build_stage(config, 0)
        images = torch.randn(5, channels, size, size, generator=generator)
        labels = torch.eye(10)[torch.randint(0, 10, (5,), generator=generator)]
        for _ in range(3):
            train_step(stage.student, stage.optimizer, stage.spec, images, labels, 1.0)
        directory = root / name
        write_checkpoint_dir(
            directory / "checkpoint", save_checkpoint(stage.student, "s", 1, optimizer=stage.optimizer)
        )
        write_bundle(directory, "input", {"images": L.nhwc(images).numpy()})
        out[name] = (stage.student, images, directory)
    run_tsx("test/conformance/roundtrip.ts", *[str(d) for _, _, d in out.values()])
    return out


@pytest.mark.parametrize("name", MODELS)
def test_tfjs_reproduces_a_torch_checkpoint(exported, name):
    model, images, directory = exported[name]
    theirs = read_bundle(directory, "tfjs")
    with torch.no_grad():
        out = model(images, forward_context(False))
        trained = model(images, forward_context(True)).logits
    check_close("round trip: logits (inference)", f"{name}", out.logits, theirs["eval/logits"])
    check_close("round trip: logits (training)", f"{name}", trained, theirs["train/logits"])
    for point, activations in zip(TRANSFER_POINTS, out.points):
        check_close(
            "round trip: attention maps",
            f"{name} {point}",
            attention_map(activations, "larq"),
            theirs[f"eval/map/{point}"],
        )
    assert [block for block, _ in out.gates] == [k[len("eval/gate/") :] for k in theirs if k.startswith("eval/gate/")]
    for block, values in out.gates:
        check_close("round trip: gates", f"{name} {block}", values, theirs[f"eval/gate/{block}"])


@pytest.mark.parametrize("name", MODELS)
def test_tfjs_saves_the_same_checkpoint_back(exported, name):
    _, _, directory = exported[name]
    ours = json.loads((directory / "checkpoint" / "manifest.json").read_text())
    again = json.loads((directory / "resaved" / "manifest.json").read_text())
    assert ours["version"] == 2 and ours["epochsCompleted"] == 1

    # The tfjs engine writes the manifest version it knows (format 1 names the count `epoch`): the rest is equal.
    def same(m):
        return {k: v for k, v in m.items() if k not in ("version", "epoch", "epochsCompleted")}

    assert same(again) == same(ours)  # names, groups, shapes, offsets, ModelBuild, step, sha256 of the data
    assert (directory / "resaved" / "data.bin").read_bytes() == (directory / "checkpoint" / "data.bin").read_bytes()
    ckpt = read_checkpoint_dir(directory / "resaved")
    assert ckpt.manifest["step"] == 3
    assert {t["group"] for t in ckpt.manifest["tensors"]} == {"weights", "state", "optimizer"}
    slots = {t["name"].split("/", 1)[0] for t in ckpt.manifest["tensors"] if t["group"] == "optimizer"}
    assert slots == ({"velocity"} if OPTIMIZERS.get(name, ADAM).get("kind") == "sgd" else {"m", "v"})
    assert np.isfinite(ckpt.data).all()
