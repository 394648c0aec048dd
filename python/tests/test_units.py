"""Small properties of the engine's parts that the conformance cases do not isolate."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from r2b_torch import layout as L
from r2b_torch.checkpoint import read_checkpoint_dir, save_checkpoint, write_checkpoint_dir
from r2b_torch.config import OptimizerSpec, parse_run_config
from r2b_torch.kinks import KinkAligner
from r2b_torch.layers import BatchNorm, ParamStore, apply_bn_updates, forward_context
from r2b_torch.models import ModelBuild, ResNet18, model_build, stage_widths
from r2b_torch.optimizer import Optimizer, OptimizerParam
from r2b_torch.padding import avg_pool_same, max_pool_same, same_padding
from r2b_torch.quantizers import approx_sign, quantize_weights, sign_plus_one, ste_sign


def test_sign_of_zero_is_plus_one():
    x = torch.tensor([-2.0, -0.0, 0.0, 1e-30, -1e-30, 3.0])
    assert sign_plus_one(x).tolist() == [-1, 1, 1, 1, -1, 1]
    assert torch.sign(torch.tensor(0.0)) == 0  # why sign_plus_one exists


def test_straight_through_gradients():
    x = torch.tensor([-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.2], requires_grad=True)
    ste_sign(x, 1.0).backward(torch.full_like(x, 2.0))
    assert x.grad.tolist() == [0, 2, 2, 2, 2, 2, 0]  # dy * 1{|x| <= clip}
    x.grad = None
    ste_sign(x, 1.25).sum().backward()
    assert x.grad.tolist() == [0, 1, 1, 1, 1, 1, 1]
    x.grad = None
    approx_sign(x).sum().backward()
    assert x.grad.tolist() == pytest.approx([0, 0, 1, 2, 1, 0, 0])  # (2 - 2|x|) 1{|x| <= 1}


def test_weight_quantizer_scales():
    latent = torch.tensor([[[[0.5]], [[-0.25]]], [[[-0.1]], [[0.0]]]], requires_grad=True)  # [out 2, in 2, 1, 1]
    assert quantize_weights(latent, "none").flatten().tolist() == [1, -1, -1, 1]
    mean = quantize_weights(latent, "mean").flatten().tolist()
    assert mean == pytest.approx([0.375, -0.375, -0.05, 0.05])
    learned = quantize_weights(latent, "learned", torch.tensor([2.0, 3.0])).flatten().tolist()
    assert learned == [2, -2, -3, 3]


def test_same_padding_is_tensorflows():
    assert same_padding(32, 3, 1) == (1, 1)
    assert same_padding(32, 3, 2) == (0, 1)  # the extra row goes after
    assert same_padding(7, 3, 2) == (1, 1)
    assert same_padding(28, 7, 2) == (2, 3)
    assert same_padding(14, 3, 2) == (0, 1)
    assert same_padding(7, 2, 2) == (0, 1)
    assert same_padding(8, 1, 1) == (0, 0)


def test_pools_average_valid_elements_and_tfjs_gradient():
    x = torch.arange(1.0, 10.0).view(1, 1, 3, 3).requires_grad_()
    y = avg_pool_same(x, 2, 2)
    assert y.flatten().tolist() == [3.0, 4.5, 7.5, 9.0]  # (1+2+4+5)/4, (3+6)/2, (7+8)/2, 9/1
    y.sum().backward()
    assert x.grad.flatten().tolist() == [0.25] * 9  # tfjs 4.22's AvgPoolGrad: 1/4 everywhere
    x.grad = None
    avg_pool_same(x, 2, 2, gradient="exact").sum().backward()
    assert x.grad.flatten().tolist() == [0.25, 0.25, 0.5, 0.25, 0.25, 0.5, 0.5, 0.5, 1.0]
    m = max_pool_same(-x.detach(), 3, 2)  # padding never wins, even over negative values
    assert m.flatten().tolist() == [-1.0, -2.0, -4.0, -5.0]  # windows rows/cols {-1,0,1}, {1,2,3}: pads 1 and 1


def test_layout_mapping_round_trips():
    w = torch.randn(5, 3, 3, 2)  # [out, in, kh, kw]
    tf_w = L.to_tf(w, L.CONV)
    assert list(tf_w.shape) == [3, 2, 3, 5] == L.tf_shape(w.shape, L.CONV)
    assert tf_w[1, 0, 2, 4] == w[4, 2, 1, 0]
    assert torch.equal(L.from_tf(tf_w, L.CONV), w)
    d = torch.randn(4, 7)
    assert torch.equal(L.from_tf(L.to_tf(d, L.DENSE), L.DENSE), d) and L.to_tf(d, L.DENSE).shape == (7, 4)


def test_batch_norm_momentum_is_the_weight_of_the_old_statistic():
    store = ParamStore(0)
    bn = BatchNorm(store, "bn", 2, momentum=0.9, epsilon=1e-3)
    x = torch.tensor([[1.0, 3.0], [5.0, 7.0]]).view(2, 2, 1, 1).repeat(1, 1, 2, 2)  # channel 0: 1, 5; channel 1: 3, 7
    ctx = forward_context(True)
    y = bn(x, ctx)
    apply_bn_updates(ctx)
    assert bn.moving_mean.tolist() == pytest.approx([0.1 * 3.0, 0.1 * 5.0])
    # The biased batch variance (4), not PyTorch's unbiased one (4 * 8/7).
    assert bn.moving_variance.tolist() == pytest.approx([0.9 + 0.1 * 4.0] * 2)
    assert y[:, 0].flatten().tolist() == pytest.approx([-2 / math.sqrt(4.001)] * 4 + [2 / math.sqrt(4.001)] * 4)


def test_adamw_step_decays_with_the_schedule_and_clips():
    theta = torch.nn.Parameter(torch.tensor([0.5, 0.9995, -0.3]))
    spec = OptimizerSpec(learning_rate=0.01, weight_decay=0.1)
    opt = Optimizer(spec, [OptimizerParam("w", theta, decay=True, clip=True)])
    g = torch.tensor([1e-3, -2.0, 0.0])
    opt.apply({"w": g}, multiplier=0.5)
    lr, correction = 0.005, math.sqrt(1 - 0.999) / (1 - 0.9)
    expected = []
    for t0, gi in zip([0.5, 0.9995, -0.3], g.tolist()):
        m, v = 0.1 * gi, 0.001 * gi * gi
        nxt = t0 - m / (math.sqrt(v) + 1e-7) * lr * correction - t0 * 0.1 * 0.5  # decay: lambda * eta_t * theta
        expected.append(max(-1.0, min(1.0, nxt)))
    assert theta.tolist() == pytest.approx(expected, rel=1e-6)
    assert theta[1].item() == pytest.approx(1.0 * 1 - 0.0, abs=0.06)  # decayed, stays inside the clip
    assert opt.slots == ("m", "v")
    assert opt.step == 1 and torch.equal(opt.state()["m"]["w"], 0.1 * g)
    spec_clip = OptimizerSpec(learning_rate=0.01)
    w = torch.nn.Parameter(torch.tensor([0.9995, -0.9995]))
    Optimizer(spec_clip, [OptimizerParam("w", w, decay=False, clip=True)]).apply({"w": torch.tensor([-1.0, 1.0])}, 1.0)
    assert w.tolist() == [1.0, -1.0]


def test_sgd_two_steps_with_momentum_decay_and_clip():
    """Two steps worked by hand (lr 0.1, mu 0.9, lambda 0.01, multipliers 1 then 0.5): v <- mu v + g;
    theta <- theta - lr eta_t v - lambda eta_t theta (the decayed tensor); the clipped tensor ends at 1."""
    spec = OptimizerSpec(kind="sgd", learning_rate=0.1, momentum=0.9, weight_decay=0.01)
    w = torch.nn.Parameter(torch.tensor([0.5, -0.2, 0.9]))
    k = torch.nn.Parameter(torch.tensor([0.98, -0.5]))
    opt = Optimizer(spec, [OptimizerParam("w", w, decay=True, clip=False), OptimizerParam("k", k, False, True)])
    assert opt.slots == ("velocity",)
    opt.apply({"w": torch.tensor([0.1, -0.3, 0.2]), "k": torch.tensor([-0.3, 0.0])}, 1.0)
    # v = g; w - 0.1 v - 0.01 w; k: 0.98 + 0.03 = 1.01, clipped.
    assert w.tolist() == pytest.approx([0.485, -0.168, 0.871], abs=1e-6)
    assert k.tolist() == [1.0, -0.5]
    opt.apply({"w": torch.tensor([0.05, 0.1, 2.0]), "k": torch.tensor([-0.1, 0.0])}, 0.5)
    # v = 0.9 [0.1, -0.3, 0.2] + [0.05, 0.1, 2.0] = [0.14, -0.17, 2.18]; w - 0.05 v - 0.005 w.
    assert opt.state()["velocity"]["w"].tolist() == pytest.approx([0.14, -0.17, 2.18], abs=1e-6)
    assert w.tolist() == pytest.approx([0.475575, -0.15866, 0.757645], abs=1e-6)
    assert k.tolist() == [1.0, -0.5]  # 1 + 0.05 * 0.37, clipped again
    assert opt.state()["velocity"]["k"].tolist() == pytest.approx([-0.37, 0.0], abs=1e-6)
    assert opt.step == 2


def test_sgd_without_momentum_is_keras_plain_sgd():
    """mu = 0 (Keras's default): theta <- theta - lr eta_t g, whatever the previous gradients."""
    spec = OptimizerSpec(kind="sgd", learning_rate=0.1)
    w = torch.nn.Parameter(torch.tensor([0.5, -0.25]))
    opt = Optimizer(spec, [OptimizerParam("w", w, decay=False, clip=False)])
    opt.apply({"w": torch.tensor([1.0, -2.0])}, 1.0)
    expected = torch.tensor([0.5, -0.25]) - 0.1 * torch.tensor([1.0, -2.0])
    assert torch.equal(w.detach(), expected)
    opt.apply({"w": torch.tensor([0.5, 0.5])}, 0.5)
    assert torch.equal(w.detach(), expected - 0.05 * torch.tensor([0.5, 0.5]))


def test_optimizer_kind_is_checked():
    with pytest.raises(ValueError, match="optimizer.kind: 'lamb' is not one of 'adamw', 'sgd'"):
        parse_run_config({"stages": [{"name": "s", "optimizer": {"kind": "lamb"}}]})
    spec = parse_run_config({"stages": [{"name": "s", "optimizer": {"kind": "sgd", "momentum": 0.9}}]}).stages[0]
    assert (spec.optimizer.kind, spec.optimizer.momentum, spec.optimizer.weight_decay) == ("sgd", 0.9, 0.0)


def test_width_rounding_matches_math_round():
    assert stage_widths(0.125) == [8, 16, 32, 64]
    assert stage_widths(0.0390625) == [3, 5, 10, 20]  # 2.5 -> 3 (JS rounds halves up)


def config(**model):
    return parse_run_config(
        {
            "data": {"inputSize": 28, "channels": 1, "classes": 10},
            "model": {"width": 0.125, **model},
            "stages": [{"name": "s", "student": {"activation": "sign", "weights": "sign", "scaling": "gate"}}],
        }
    )


def test_model_build_json_is_the_tfjs_one():
    build = model_build(config(), config().stages[0].student, seed=9)
    data = build.to_json()
    assert " ".join(data) == (
        "architecture activation weights scaling width stem downsample padValue steClip gateReduction weightScale "
        "bnMomentum bnEpsilon preluInit inputSize channels classes seed"
    )
    assert data["stem"] == "cifar" and data["padValue"] == 1 and data["seed"] == 9
    assert ModelBuild.from_json(json.loads(json.dumps(data))) == build
    with pytest.raises(ValueError, match="stem"):
        ModelBuild.from_json({**data, "stem": "auto"})
    with pytest.raises(ValueError, match="lacks"):
        ModelBuild.from_json({k: v for k, v in data.items() if k != "seed"})


def test_names_and_decay_sets():
    model = ResNet18(model_build(config(downsample="binary", weightScale="learned"), config().stages[0].student))
    names = list(model.store.weights)
    assert names[:3] == ["stem.conv.kernel", "stem.bn.gamma", "stem.bn.beta"]
    assert "block_3a.shortcut.conv.weight_scale" in names and "block_1a.gate.reduce.kernel" in names
    assert names[-2:] == ["head.logits.kernel", "head.logits.bias"]
    assert "block_1a.bn.moving_variance" in model.store.state
    assert model.store.decayed == {n for n in names if n.endswith(".kernel")}
    assert model.store.binary_kernels == {n for n in names if n.startswith("block_") and n.endswith("conv.kernel")}
    assert len(model.binary_layer_kernels()) == 19  # 16 3x3 convs and 3 binary shortcuts


def test_checkpoint_folder_refuses_corruption(tmp_path):
    model = ResNet18(model_build(config(), config().stages[0].student))
    manifest = write_checkpoint_dir(tmp_path / "e1", save_checkpoint(model, "s", 1))
    assert manifest["bytes"] == sum(int(np.prod(t["shape"])) for t in manifest["tensors"]) * 4
    assert read_checkpoint_dir(tmp_path / "e1").epochs_completed == 1
    data = bytearray((tmp_path / "e1" / "data.bin").read_bytes())
    data[10] ^= 1
    (tmp_path / "e1" / "data.bin").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        read_checkpoint_dir(tmp_path / "e1")


class _OwnSide(KinkAligner):
    """An aligner that lists no element anywhere: every site takes this engine's own side, through the
    written-out (torch.where) forms the conformance tests check against tfjs."""

    def __init__(self) -> None:
        super().__init__({})

    def decide(self, site, x, own, rule, kink=0.0):
        return own


@pytest.mark.parametrize(
    "model, student",
    [
        ({}, {"activation": "tanh", "weights": "real", "scaling": "gate"}),
        ({"binaryPadding": "one"}, {"activation": "sign", "weights": "real", "scaling": "gate"}),
        ({"binaryPadding": "one"}, {"activation": "sign", "weights": "sign", "scaling": "gate"}),
        (
            {"binaryPadding": "zero", "downsample": "binary"},
            {"activation": "sign", "weights": "sign", "scaling": "learned"},
        ),
        (
            {"weightScale": "mean", "preluInit": 0.25},
            {"activation": "approxsign", "weights": "sign", "scaling": "none"},
        ),
        ({"stem": "imagenet"}, {"architecture": "resnet"}),
    ],
)
def test_training_path_computes_what_the_checked_path_computes(model, student):
    """The training path's own kernels (sign by float comparisons, the STE and ApproxSign backward, the PReLU
    function) give the values and gradients of the written-out forms the conformance tests compare with tfjs
    (kinks.py, used whenever an aligner is present). Everything else, batch norm, padding, mean_over and
    scale_channels included, is the same code on both paths and checked against tfjs directly."""
    config = parse_run_config(
        {
            "seed": 4,
            "data": {"inputSize": 20, "channels": 3, "classes": 10},
            "model": {"width": 0.125, "bnMomentum": 0.9, "preluInit": 0.1, **model},
            "stages": [{"name": "s", "student": student, "losses": {}}],
        }
    )
    net = ResNet18(model_build(config, config.stages[0].student))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _, entry in net.store.weights.items():  # off the initial values, so PReLUs and gates matter
            entry.tensor.add_(0.05 * torch.randn(entry.tensor.shape, generator=generator))
    images = torch.randn(6, 3, 20, 20, generator=generator)
    weights = [entry.tensor for entry in net.store.weights.values()]
    results = []
    for align in (None, _OwnSide()):
        out = net(images, forward_context(True, align=align))
        loss = out.logits.square().mean() + sum(p.square().mean() for p in out.points)
        grads = torch.autograd.grad(loss, weights, allow_unused=True)
        results.append((out, grads))
    (fast, fast_grads), (checked, checked_grads) = results
    torch.testing.assert_close(fast.logits, checked.logits, rtol=1e-5, atol=1e-6)
    for a, b in zip(fast.points, checked.points):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for name, a, b in zip(net.store.weights, fast_grads, checked_grads):
        assert (a is None) == (b is None), name
        if a is not None:
            scale = float(b.abs().max()) + 1e-12
            assert float((a - b).abs().max()) <= 1e-5 * scale, name


def test_prefetch_yields_the_same_batches_and_stops(tmp_path):
    from runs import tiny_store

    from r2b_torch.config import AugmentSpec
    from r2b_torch.data import Prefetch, open_dataset

    reader = open_dataset("tiny", tiny_store(tmp_path))
    augment = AugmentSpec(flip=True, crop_padding=2, mixup_alpha=0.2)
    direct = list(reader.train_batches(8, 3, seed=5, augment=augment))
    ahead = list(Prefetch(reader.train_batches(8, 3, seed=5, augment=augment)))
    assert len(direct) == len(ahead) == 6
    for a, b in zip(direct, ahead):
        assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    early = Prefetch(reader.train_batches(8, 3, seed=5, augment=augment), depth=1)
    next(early)
    early.close()
    assert not early._thread.is_alive()


def test_command_line_info_and_bench(capsys):
    from r2b_torch.cli import main

    assert main(["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["canTrain"] is True and info["why"] is None and info["defaultDevice"] in ("cpu", "cuda", "mps")
    assert info["torch"]["version"] == torch.__version__ and info["devices"][0]["kind"] == "cpu"
    threads = torch.get_num_threads()
    try:
        args = ["bench-step", "--width", "0.0625", "--batch", "4", "--input", "16", "--steps", "2", "--plain"]
        assert main([*args, "--device", "cpu", "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    bench = json.loads(capsys.readouterr().out)
    assert set(bench["timings"]) == {"teacher", "tanh", "ban", "bnn", "plain"}
    assert set(bench["ratios"]) == {"teacher/plain", "tanh/teacher", "ban/teacher", "bnn/teacher"}
    assert all(t["medianMs"] > 0 for t in bench["timings"].values())
