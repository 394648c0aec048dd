"""Helpers of the conformance tests: the dump's files, the comparison rule and the agreement report."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from r2b_torch import layout as L
from r2b_torch.checkpoint import Checkpoint, read_checkpoint_dir
from r2b_torch.config import RunConfig, parse_run_config
from r2b_torch.kinks import KinkAligner, KinkSite

REPO = Path(__file__).resolve().parents[2]

# The comparison rule, element-wise: |torch - tfjs| <= RTOL * |tfjs| + ATOL_SCALE * max|tfjs over the tensor|.
# The absolute part is relative to the tensor's own scale, so an element that is small next to its tensor's
# largest (a near-cancelled gradient, say) is judged at the precision float32 gave the whole computation.
RTOL = 1e-4
ATOL_SCALE = 1e-4

# Worst normwise relative error max|a - b| / max|b| per kind of quantity, over all cases (printed at the end).
AGREEMENT: dict[str, tuple[float, str]] = {}
# Kink flips (kinks.py) per case and pass: `<pass>.flips`, `<pass>.near` (elements tfjs listed), per site.
FLIPS: dict[str, dict[str, int]] = defaultdict(dict)
# End-to-end post-step values: (elements beyond the plain 1e-4 rule but within the tolerance propagated from
# the gradient tolerance through Adam, elements compared), per kind.
PROPAGATED: dict[str, tuple[int, int]] = {}
# Null-gradient tensors per case and step (mathematically zero gradients, computed as rounding noise).
NULLS: dict[str, list[str]] = {}


def read_bundle(directory: Path, name: str) -> dict[str, np.ndarray]:
    index = json.loads((directory / f"{name}.json").read_text())
    data = np.fromfile(directory / f"{name}.bin", dtype="<f4")
    out = {}
    for key, entry in index.items():
        size = int(np.prod(entry["shape"], dtype=np.int64))
        out[key] = data[entry["offset"] : entry["offset"] + size].reshape(entry["shape"])
    return out


def write_bundle(directory: Path, name: str, arrays: dict[str, np.ndarray]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    index, parts, offset = {}, [], 0
    for key, value in arrays.items():
        value = np.ascontiguousarray(value, dtype="<f4")
        index[key] = {"shape": list(value.shape), "offset": offset}
        parts.append(value.reshape(-1))
        offset += value.size
    (directory / f"{name}.bin").write_bytes(np.concatenate(parts).tobytes() if parts else b"")
    (directory / f"{name}.json").write_text(json.dumps(index) + "\n")


def as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32).numpy()
    return np.asarray(x, dtype=np.float32)


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    diff = float(np.abs(actual.astype(np.float64) - expected).max()) if expected.size else 0.0
    return diff / scale if scale > 0 else diff


def record(kind: str, error: float, where: str) -> None:
    if kind not in AGREEMENT or error > AGREEMENT[kind][0]:
        AGREEMENT[kind] = (error, where)


def check_close(kind: str, where: str, actual, expected) -> float:
    """Asserts the comparison rule and records the normwise relative error under `kind`."""
    a = as_numpy(actual)
    e = np.asarray(expected, dtype=np.float32)
    assert a.shape == e.shape, f"{where}: shape {a.shape} vs tfjs {e.shape}"
    error = relative_error(a, e)
    record(kind, error, where)
    scale = float(np.abs(e).max()) if e.size else 0.0
    tolerance = RTOL * np.abs(e.astype(np.float64)) + ATOL_SCALE * scale + (1e-30 if scale == 0 else 0.0)
    bad = np.abs(a.astype(np.float64) - e) > tolerance
    if bad.any():
        i = np.unravel_index(int(np.argmax(np.abs(a.astype(np.float64) - e) - tolerance)), e.shape)
        raise AssertionError(
            f"{where}: {int(bad.sum())} of {e.size} values beyond tolerance; normwise relative error {error:.3e}; "
            f"worst at {tuple(int(k) for k in i)}: torch {a[i]!r} vs tfjs {e[i]!r}"
        )
    return error


@dataclass
class DumpCase:
    dump: Path
    name: str

    @cached_property
    def meta(self) -> dict:
        return json.loads((self.dump / self.name / "case.json").read_text())

    @cached_property
    def config(self) -> RunConfig:
        return parse_run_config(self.meta["config"])

    @property
    def stage_index(self) -> int:
        return self.meta["stageIndex"]

    @property
    def spec(self):
        return self.config.stages[self.stage_index]

    @cached_property
    def tensors(self) -> dict[str, np.ndarray]:
        return read_bundle(self.dump / self.name, "tensors")

    def checkpoint(self, index: int) -> Checkpoint:
        return read_checkpoint_dir(self.dump / self.name / f"ckpt{index}")

    @property
    def teacher_case(self) -> str | None:
        return self.meta["teacher"]

    def images(self) -> torch.Tensor:
        """The batch as NCHW."""
        return L.nchw(torch.from_numpy(self.tensors["batch/images"].copy())).contiguous()

    def labels(self) -> torch.Tensor:
        return torch.from_numpy(self.tensors["batch/labels"].copy())

    def aligner(self, prefix: str) -> KinkAligner:
        """The kink sites tfjs recorded in one pass (`eval`, `train1`, `train2`)."""
        sites = {}
        head = f"{prefix}/kink/"
        for key in self.tensors:
            if key.startswith(head) and key.endswith("/shape"):
                site = key[len(head) : -len("/shape")]
                sites[site] = KinkSite(
                    shape=[int(v) for v in self.tensors[key]],
                    index=self.tensors[f"{head}{site}/index"].astype(np.int64),
                    value=self.tensors[f"{head}{site}/value"],
                )
        return KinkAligner(sites)

    def names(self, prefix: str) -> list[str]:
        return [k[len(prefix) :] for k in self.tensors if k.startswith(prefix)]
