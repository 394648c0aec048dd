"""The PyTorch engine reproduces the tfjs engine: every case of test/conformance/dump.ts is loaded from its tfjs
checkpoint and checked, in tfjs's layouts, against what tfjs computed: inference-mode logits, transfer
points, attention maps and gates; the loss functions; two training steps (loss components, training-mode
logits, every gradient, and weights, BN statistics and the optimiser's state after each step: Adam's moments,
or SGD's velocity in the SGD cases).

Kinks (r2b_torch/kinks.py): where a pre-activation lies within float rounding of a ReLU, PReLU, sign or
STE-mask kink, two correct engines may take different sides, and a single such element moves upstream
gradients by ~1e-2. tfjs lists the elements within 1e-4 of each kink; this engine takes tfjs's side there and
counts where its own side differed (flips), printed in the summary and asserted to be few.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from r2b_torch import layout as L
from r2b_torch.attention import attention_loss, attention_map
from r2b_torch.checkpoint import model_from_checkpoint, restore_checkpoint, save_checkpoint
from r2b_torch.kinks import NEAR
from r2b_torch.layers import apply_bn_updates, forward_context
from r2b_torch.losses import cross_entropy, distillation_loss
from r2b_torch.models import TRANSFER_POINTS
from r2b_torch.optimizer import optimizer_for
from r2b_torch.stage import stage_gradients, uses_teacher
from support import ATOL_SCALE, FLIPS, NULLS, PROPAGATED, RTOL, DumpCase, as_numpy, check_close, record

CASES = [
    "teacher-c28",
    "tanh-gate",
    "ban-gate-paper",
    "bnn-gate",
    "ban-none-bds",
    "bnn-learned-bds",
    "teacher-i28",
    "bnn-gate-bds-mean",
    "approx-learned",
    "tanh-none-bds",
    "teacher-c32",
    "ban-learned-c32",
    "bnn-gate-bds-c32",
    "teacher-sgd-c28",
    "bnn-sgd-c32",
]

# Kink flips allowed per pass of a case, besides flips of zeros computed as noise (the output of a binary
# convolution with a mean weight scale, whose +-m terms cancel exactly, is such a zero at ~9% of its elements).
MAX_FLIPS = 3


def test_the_dump_holds_exactly_these_cases(dump):
    meta = json.loads((dump / "meta.json").read_text())
    assert meta["cases"] == CASES


def record_kinks(case: DumpCase, prefix: str, aligner) -> None:
    """Every site tfjs recorded was visited. Flips (this engine's own side differing from tfjs's at a listed
    element) are recorded for the summary. Each must be a disagreement within rounding (this engine's value
    also within 1e-4 of the kink). Flips of zeros computed as noise (both values within ~1 ulp of the kink)
    are counted apart; the others must be few."""
    assert aligner.visited == set(aligner.sites), (
        f"{case.name} {prefix}: sites not visited: {set(aligner.sites) - aligner.visited}"
    )
    counts = FLIPS[case.name]
    counts[f"{prefix}.near"] = sum(aligner.near.values())
    counts[f"{prefix}.zero-flips"] = sum(aligner.zeros.values())
    counts[f"{prefix}.flips"] = sum(aligner.flips.values()) - counts[f"{prefix}.zero-flips"]
    for site, count in aligner.flips.items():
        if count:
            counts[f"{prefix}:{site}"] = count
        assert aligner.margin[site] <= NEAR, (
            f"{case.name} {prefix} {site}: a flip {aligner.margin[site]:.1e} from the kink"
        )
    assert counts[f"{prefix}.flips"] <= MAX_FLIPS, (
        f"{case.name} {prefix}: {counts[f'{prefix}.flips']} kink flips ({aligner.flips})"
    )


def teacher_model(dump, case: DumpCase):
    if case.teacher_case is None:
        return None
    return model_from_checkpoint(DumpCase(dump, case.teacher_case).checkpoint(0))


@pytest.mark.parametrize("name", [n for n in CASES if "-sgd-" in n])
def test_sgd_cases_keep_the_velocity(dump, name):
    """The SGD cases train with momentum, and their checkpoints hold SGD's state, not Adam's."""
    case = DumpCase(dump, name)
    assert (case.spec.optimizer.kind, case.spec.optimizer.momentum) == ("sgd", 0.9)
    for index in range(3):
        tensors = case.checkpoint(index).manifest["tensors"]
        weights = [t["name"] for t in tensors if t["group"] == "weights"]
        assert [t["name"] for t in tensors if t["group"] == "optimizer"] == [f"velocity/{n}" for n in weights]


@pytest.mark.parametrize("name", CASES)
def test_checkpoint_loads_and_saves_the_same_bytes(dump, name):
    """A tfjs checkpoint loads by name into the torch model and saves back to the identical buffer and list."""
    case = DumpCase(dump, name)
    for index in range(3):
        ckpt = case.checkpoint(index)
        model = model_from_checkpoint(ckpt)
        optimizer = optimizer_for(model, case.spec.optimizer, case.config.model.latent_clip)
        restore_checkpoint(model, ckpt, optimizer)
        again = save_checkpoint(
            model, ckpt.manifest["stage"], ckpt.epochs_completed, optimizer=optimizer, version=ckpt.manifest["version"]
        )
        assert again.manifest == ckpt.manifest
        assert again.data.tobytes() == ckpt.data.tobytes()


@pytest.mark.parametrize("name", CASES)
def test_inference_matches(dump, name):
    case = DumpCase(dump, name)
    model = model_from_checkpoint(case.checkpoint(0))
    images, labels = case.images(), case.labels()
    aligner = case.aligner("eval")
    with torch.no_grad():
        out = model(images, forward_context(False, align=aligner))
    record_kinks(case, "eval", aligner)
    t = case.tensors
    check_close("logits (inference)", f"{name} eval logits", out.logits, t["eval/logits"])
    for point, activations in zip(TRANSFER_POINTS, out.points):
        check_close("transfer points", f"{name} {point}", L.nhwc(activations), t[f"eval/point/{point}"])
        for form in ("paper", "larq"):
            check_close(
                f"attention maps ({form})",
                f"{name} {point}",
                attention_map(activations, form),
                t[f"eval/map/{form}/{point}"],
            )
    tf_gates = case.names("eval/gate/")
    assert [block for block, _ in out.gates] == tf_gates
    for block, values in out.gates:
        check_close("gates", f"{name} {block}", values, t[f"eval/gate/{block}"])
    if model.build.scaling == "gate":
        assert len(tf_gates) == 16

    with torch.no_grad():
        check_close("loss: cross-entropy", f"{name} ce", cross_entropy(out.logits, labels), t["eval/loss/ce"])
        check_close(
            "loss: cross-entropy",
            f"{name} ce smoothed",
            cross_entropy(out.logits, labels, 0.2),
            t["eval/loss/ce_smooth"],
        )
        teacher = teacher_model(dump, case)
        if teacher is not None:
            target = teacher(images, forward_context(False))
            for temperature, key in ((1.0, "kd_t1"), (2.5, "kd_t2.5")):
                check_close(
                    "loss: distillation",
                    f"{name} {key}",
                    distillation_loss(out.logits, target.logits, temperature),
                    t[f"eval/loss/{key}"],
                )
            for form in ("paper", "larq"):
                check_close(
                    f"loss: attention ({form})",
                    f"{name} att",
                    attention_loss(out.points, target.points, form),
                    t[f"eval/loss/att_{form}"],
                )


# A gradient tensor whose tfjs values all lie below this fraction of the step's largest gradient is a null
# gradient: mathematically zero (the shift of a tensor that only feeds training-mode BNs, say) and computed as
# rounding noise, which no two engines share. Both engines must keep it below the bound.
NULL_GRADIENT = 1e-5


def tfjs_gradients(case: DumpCase, prefix: str) -> dict[str, np.ndarray]:
    return {n: case.tensors[f"{prefix}/grad/{n}"] for n in case.names(f"{prefix}/grad/")}


def adam_step_tolerance(g, dg, m0, v0, spec, step, multiplier):
    """How far Adam's step may move when its gradient moves within +-dg: max |u(g') - u(g)| over nine points
    of [g - dg, g + dg] (u is smooth but not monotonic in g once the moments are non-zero). float64."""
    b1, b2, eps = spec.beta1, spec.beta2, spec.epsilon
    c = spec.learning_rate * multiplier * np.sqrt(1 - b2**step) / (1 - b1**step)

    def u(x):
        m = b1 * m0 + (1 - b1) * x
        v = b2 * v0 + (1 - b2) * x * x
        return c * m / (np.sqrt(v) + eps)

    g, dg, m0, v0 = (np.asarray(a, dtype=np.float64) for a in (g, dg, m0, v0))
    centre = u(g)
    return np.max([np.abs(u(g + k * dg) - centre) for k in np.linspace(-1, 1, 9)], axis=0)


def update_tolerance(spec, g, dg, state, step, multiplier):
    """How far a weight's update may move when its gradient moves within +-dg; `state` maps each slot to the
    weight's state before the step. float64."""
    if spec.kind == "sgd":
        # u = lr_t (mu v0 + g): linear in g.
        return spec.learning_rate * multiplier * np.asarray(dg, dtype=np.float64)
    return adam_step_tolerance(g, dg, state["m"], state["v"], spec, step, multiplier)


def state_tolerance(spec, slot, g, dg):
    """How far a slot of the optimiser's state may move when its gradient moves within +-dg. float64."""
    g64, dg64 = np.abs(np.asarray(g, dtype=np.float64)), np.asarray(dg, dtype=np.float64)
    if slot == "m":
        return (1 - spec.beta1) * dg64
    if slot == "v":
        return (1 - spec.beta2) * (2 * g64 * dg64 + dg64 * dg64)
    assert slot == "velocity", slot
    return dg64  # v0 mu + g


def state_label(slot: str) -> str:
    return "velocity" if slot == "velocity" else "moments"


def check_within(kind: str, where: str, actual, expected, tolerance, strict) -> None:
    """Element-wise |actual - expected| <= tolerance; records the normwise relative error under `kind`, and
    how many elements needed more than the `strict` (plain 1e-4) tolerance."""
    a = as_numpy(actual).astype(np.float64)
    e = np.asarray(expected, dtype=np.float64)
    error = float(np.abs(a - e).max() / max(np.abs(e).max(), 1e-30)) if e.size else 0.0
    record(kind, error, where)
    beyond, total = PROPAGATED.get(kind, (0, 0))
    PROPAGATED[kind] = (beyond + int((np.abs(a - e) > strict).sum()), total + e.size)
    excess = np.abs(a - e) - tolerance
    if (excess > 0).any():
        i = np.unravel_index(int(np.argmax(excess)), e.shape)
        raise AssertionError(
            f"{where}: {int((excess > 0).sum())} values beyond tolerance; worst {tuple(map(int, i))}: "
            f"torch {a[i]} vs tfjs {e[i]} (tolerance {tolerance[i]:.3e})"
        )


@pytest.mark.parametrize("name", CASES)
def test_training_steps_match(dump, name):
    """Each of two steps starts from the tfjs checkpoint before it (weights, BN statistics, optimiser state, step),
    with tfjs's side taken at the kinks tfjs listed (flips counted)."""
    case = DumpCase(dump, name)
    spec = case.spec
    model = model_from_checkpoint(case.checkpoint(0))
    optimizer = optimizer_for(model, spec.optimizer, case.config.model.latent_clip)
    teacher = teacher_model(dump, case) if uses_teacher(spec) else None
    images, labels = case.images(), case.labels()
    t = case.tensors
    clipped = 0
    for s, multiplier in enumerate(case.meta["multipliers"]):
        prefix = f"train{s + 1}"
        where = f"{name} step {s + 1}"
        before = case.checkpoint(s)
        restore_checkpoint(model, before, optimizer)
        assert optimizer.step == s
        aligner = case.aligner(prefix)
        ctx = forward_context(True, align=aligner)
        grads, parts = stage_gradients(model, spec, images, labels, teacher, ctx)
        record_kinks(case, prefix, aligner)
        check_close("logits (training)", f"{where} logits", parts.logits, t[f"{prefix}/logits"])
        for key, value in (
            ("total", parts.total),
            ("ce", parts.cross_entropy),
            ("att", parts.attention),
            ("kd", parts.distillation),
        ):
            check_close(f"loss: step {key}", f"{where} {key}", value, t[f"{prefix}/loss/{key}"])

        # Gradients, in tfjs layout.
        theirs = tfjs_gradients(case, prefix)
        reached = sorted(n for n, g in grads.items() if g is not None)
        assert reached == sorted(theirs), f"{where}: different tensors receive gradients"
        ours = {n: as_numpy(L.to_tf(grads[n], model.store.weights[n].layout)) for n in reached}
        largest = max(float(np.abs(g).max()) for g in theirs.values())
        bound = NULL_GRADIENT * largest
        allowed = {}
        nulls = set()
        for n in reached:
            if float(np.abs(theirs[n]).max()) <= bound:
                assert float(np.abs(ours[n]).max()) <= bound, f"{where}: {n} is a null gradient in tfjs, not here"
                nulls.add(n)
                allowed[n] = np.full(theirs[n].shape, 2 * bound)
                continue
            check_close("gradients", f"{where} d/d {n}", ours[n], theirs[n])
            e = np.abs(theirs[n].astype(np.float64))
            allowed[n] = RTOL * e + ATOL_SCALE * e.max()

        NULLS[f"{where}"] = sorted(nulls)
        expected = case.checkpoint(s + 1)
        wanted = expected.entries()
        assert expected.manifest["step"] == s + 1

        # The optimiser alone: tfjs's own gradients from tfjs's checkpoint give tfjs's next checkpoint.
        restore_checkpoint(model, before, optimizer)
        optimizer.apply(
            {n: L.from_tf(torch.from_numpy(g.copy()), model.store.weights[n].layout) for n, g in theirs.items()},
            multiplier,
        )
        isolated = save_checkpoint(model, name, 0, optimizer=optimizer)
        for key, entry in isolated.entries().items():
            if entry["group"] == "state":
                continue
            what = "weights" if entry["group"] == "weights" else state_label(entry["name"].split("/", 1)[0])
            kind = f"optimizer alone: {what}"
            check_close(kind, f"{where} {key}", isolated.array(entry), expected.array(wanted[key]))

        # End to end: this engine's gradients and optimiser, then the BN statistics of its own forward pass.
        restore_checkpoint(model, before, optimizer)
        optimizer.apply(grads, multiplier)
        apply_bn_updates(ctx)
        after = save_checkpoint(model, name, 0, optimizer=optimizer)
        got = after.entries()
        assert list(got) == list(wanted)
        previous = before.entries()
        o = spec.optimizer
        for key, entry in wanted.items():
            group, tensor_name = entry["group"], entry["name"]
            value, reference = after.array(got[key]), expected.array(entry)
            if group == "state":
                check_close("BN statistics after step", f"{where} {key}", value, reference)
                continue
            base = tensor_name.split("/", 1)[1] if group == "optimizer" else tensor_name
            g = theirs.get(base, np.zeros(entry["shape"], dtype=np.float32))
            dg = allowed.get(base, np.zeros(entry["shape"]))
            own = RTOL * np.abs(reference.astype(np.float64)) + ATOL_SCALE * np.abs(reference).max()
            suffix = " (null gradients)" if base in nulls else ""
            if group == "weights":
                state = {slot: before.array(previous[f"optimizer:{slot}/{base}"]) for slot in optimizer.slots}
                tolerance = own + update_tolerance(o, g, dg, state, s + 1, multiplier)
                check_within(f"weights after step{suffix}", f"{where} {key}", value, reference, tolerance, own)
            else:
                slot = tensor_name.split("/", 1)[0]
                tolerance = own + state_tolerance(o, slot, g, dg)
                kind = f"{state_label(slot)} after step{suffix}"
                check_within(kind, f"{where} {key}", value, reference, tolerance, own)
        for tensor_name in model.store.binary_kernels:
            if case.config.model.latent_clip:
                latent = expected.array(wanted[f"weights:{tensor_name}"])
                assert np.abs(latent).max() <= 1.0
                clipped += int((np.abs(latent) == 1.0).sum())
    if model.build.weights == "sign":
        # The latent kernels start uniform in [-1, 1]: some steps must have met the clip, or it went untested.
        assert clipped > 0
