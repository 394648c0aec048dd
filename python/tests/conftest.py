"""The conformance dump: generated once per session by running the tfjs script (test/conformance/dump.ts)
with npx tsx from the repository root. Node is required: without it the tests fail, they are not skipped.

R2B_CONFORMANCE_DUMP=<dir> reuses a dump written earlier by `npx tsx test/conformance/dump.ts <dir>`;
R2B_CONFORMANCE_BACKEND=cpu|wasm picks the tfjs backend of a fresh dump (default wasm).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch

from support import AGREEMENT, FLIPS, NULLS, PROPAGATED, REPO

# One thread: on the 2-core machines here, torch's two OpenMP threads spin against any other load (a parallel
# test suite, node) and ran this suite 10x slower; one thread is as fast on a quiet machine. R2B_TORCH_THREADS
# overrides.
torch.manual_seed(0)
torch.set_num_threads(int(os.environ.get("R2B_TORCH_THREADS", "1")))


def run_tsx(script: str, *args: str, timeout: float = 300) -> str:
    """Runs a TypeScript script of the repository with npx tsx; any failure fails the calling test."""
    npx = shutil.which("npx")
    if npx is None:
        pytest.fail(
            "node/npx is not on PATH: the conformance tests need the tfjs engine (Node >= 20 and the repository's "
            "node_modules) to produce their reference values",
            pytrace=False,
        )
    if not (REPO / "node_modules").exists():
        pytest.fail(f"{REPO / 'node_modules'} is missing: run npm ci in the repository first", pytrace=False)
    result = subprocess.run([npx, "tsx", script, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(
            f"npx tsx {script} {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    return result.stdout


@pytest.fixture(scope="session")
def dump(tmp_path_factory) -> Path:
    reuse = os.environ.get("R2B_CONFORMANCE_DUMP")
    if reuse:
        path = Path(reuse)
        if not (path / "meta.json").exists():
            pytest.fail(f"R2B_CONFORMANCE_DUMP={reuse} holds no conformance dump (meta.json)", pytrace=False)
        return path
    path = tmp_path_factory.mktemp("conformance")
    backend = os.environ.get("R2B_CONFORMANCE_BACKEND", "wasm")
    started = time.perf_counter()
    out = run_tsx("test/conformance/dump.ts", str(path), backend)
    print(f"\n{out.strip()} ({time.perf_counter() - started:.1f} s with npx)")
    return path


def pytest_terminal_summary(terminalreporter) -> None:
    if AGREEMENT:
        terminalreporter.section("torch vs tfjs agreement (max normwise relative error per quantity)")
        for kind in sorted(AGREEMENT):
            error, where = AGREEMENT[kind]
            terminalreporter.write_line(f"{kind:<28} {error:.2e}   worst: {where}")
    if PROPAGATED:
        terminalreporter.section("end-to-end steps: elements beyond the plain 1e-4 rule (within the propagated one)")
        for kind, (beyond, total) in sorted(PROPAGATED.items()):
            terminalreporter.write_line(f"{kind:<40} {beyond} of {total}")
    if FLIPS:
        terminalreporter.section("kink flips per pass: flips + zero-noise flips (z) / elements tfjs listed near a kink")
        for case in sorted(FLIPS):
            counts = FLIPS[case]
            passes = sorted({k.split(".")[0].split(":")[0] for k in counts})
            summary = ", ".join(
                f"{p} {counts.get(p + '.flips', 0)}+{counts.get(p + '.zero-flips', 0)}z/{counts.get(p + '.near', 0)}"
                for p in passes
            )
            sites = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()) if ":" in k)
            terminalreporter.write_line(f"{case:<18} {summary}" + (f"  [{sites}]" if sites else ""))
    if any(NULLS.values()):
        terminalreporter.section("null gradients (mathematically zero; both engines below 1e-5 of the step's largest)")
        for where, names in NULLS.items():
            if names:
                terminalreporter.write_line(f"{where:<28} {', '.join(names)}")
