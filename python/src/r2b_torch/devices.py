"""Where the engine trains, how fast it may round, and what it records about both.

Devices: `auto` takes CUDA when present, else Apple's MPS, else the CPU with one thread per core
(torch.set_num_threads of the CPUs the process may use, os.cpu_count() where there is no affinity mask, unless
a thread count is given); `cpu`, `cuda`, `cuda:N` and `mps`
ask for one, and an unavailable one is refused in words.

Precision (the choice, and why). Training runs in float32 on every device by default, and the engine offers
no float16/bfloat16 autocast:

- A binary convolution must stay exact: its +-1 inputs times +-1 weights summed over 9 x C_in terms is an
  integer up to 4,608 (C_in = 512), exact in float32, but float16 holds integers exactly only to 2,048 and
  bfloat16 only to 256, so a half-precision output would round the very sums the method is about (and a
  packed XNOR-popcount deployment reproduces the float32 sums, not rounded ones).
- The sign of a pre-activation must be the sign float32 gives: sign(fp16(x)) equals sign(x) for a value
  already computed (rounding never crosses 0, and -0 maps to +1 like +0), but under autocast the value
  itself comes out of half-precision convolutions and batch norms upstream, ~1e-3 off, and every value
  within that of 0 may binarise the other way; tfjs (float32) would not.
- Attention matching and KD divide maps by their maxima/norms and compare softmaxes: kept in float32.
So mixed precision would need per-layer dtype plumbing (real layers in half precision, binary convolutions
and losses in float32) that the CPU does not profit from at all; it is off, and on CPU it does not exist.
What CUDA does offer is TF32 (`precision="tf32"`): matrix units round the *inputs* of convolutions and matmuls
to 10-bit mantissas and accumulate in float32. +-1 operands are exact in TF32 and sums accumulate in
float32, so the binary convolutions of sign-weight stages stay exact; the real layers (stem, real shortcuts,
dense, gates, the teacher) round ~1e-3 relative. It is opt-in: `fp32` (TF32 disabled, so the engines agree
to float32 rounding) is the default.

Determinism: every random stream is seeded from the config (rng.py, per-variable init seeds), so a run is a
function of its config. On CPU the same thread count gives bit-identical results across a kill and resume;
on CUDA `deterministic=True` also pins cuDNN to deterministic algorithms (slower) for the same guarantee.
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

import torch

PRECISIONS = ("fp32", "tf32")
DEVICE_REQUESTS = ("auto", "cpu", "cuda", "mps")


class DeviceError(Exception):
    pass


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def select_device(request: str = "auto") -> torch.device:
    request = (request or "auto").strip().lower()
    if request == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if request == "cpu":
        return torch.device("cpu")
    if request == "cuda" or request.startswith("cuda:"):
        if not torch.cuda.is_available():
            why = "this PyTorch is a CPU-only build" if torch.version.cuda is None else "no CUDA device is visible"
            raise DeviceError(f"--device {request}: CUDA is not available ({why}); use --device cpu or auto")
        device = torch.device(request)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"--device {request}: only {torch.cuda.device_count()} CUDA device(s) are visible")
        return device
    if request == "mps":
        if not mps_available():
            raise DeviceError("--device mps: Apple's MPS backend is not available here; use --device cpu or auto")
        return torch.device("mps")
    raise DeviceError(f"--device {request}: use one of auto, cpu, cuda, cuda:N, mps")


def select_process_device(request: str, local_rank: int) -> torch.device:
    """The device of the process of local rank `local_rank` in a torchrun job: `cuda:LOCAL_RANK` where the
    request resolves to CUDA, else the CPU. One GPU per process, so `cuda:N` is refused, and MPS (one device,
    no collective backend) too."""
    request = (request or "auto").strip().lower()
    if request == "mps":
        raise DeviceError("--device mps: data-parallel training runs on CUDA or on the CPU")
    if request.startswith("cuda:"):
        raise DeviceError(f"--device {request}: under torchrun each process takes cuda:LOCAL_RANK; use --device cuda")
    if request == "auto":
        request = "cuda" if torch.cuda.is_available() else "cpu"
    device = select_device(request)
    if device.type != "cuda":
        return device
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise DeviceError(
            f"process of local rank {local_rank} has no GPU of its own ({count} visible): start at most {count} "
            "processes per node (--nproc-per-node)"
        )
    return torch.device("cuda", local_rank)


def cpu_cores() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one (containers, taskset), else
    os.cpu_count()."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def configure(
    device: torch.device, threads: int | None = None, precision: str = "fp32", deterministic: bool = False
) -> int:
    """Sets the process up for training on `device`; returns the CPU threads torch uses."""
    if precision not in PRECISIONS:
        raise DeviceError(f"--precision {precision}: use one of {', '.join(PRECISIONS)}")
    if precision == "tf32" and device.type != "cuda":
        raise DeviceError("--precision tf32 is for CUDA devices; on this device training runs in fp32")
    count = threads if threads and threads > 0 else cpu_cores()
    if device.type == "cpu" or threads:
        torch.set_num_threads(count)
    if device.type == "cuda":
        allow = precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = allow
        torch.backends.cudnn.allow_tf32 = allow
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic
    return torch.get_num_threads()


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"{props.name}, {props.total_memory / 2**30:.0f} GiB (cuda:{index})"
    if device.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    return f"{cpu_name()}, {torch.get_num_threads()} threads ({platform.system()} {platform.machine()})"


def versions() -> dict[str, str]:
    import numpy

    out = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
    }
    if torch.version.cuda:
        out["cuda"] = torch.version.cuda
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        if cudnn:
            out["cudnn"] = str(cudnn)
    return out


def environment(
    device: torch.device, precision: str = "fp32", group: Any = None, per_process_batch: int = 0
) -> dict[str, Any]:
    """run.json's `environment` for a run this engine trains (docs/run-format.md); `group` (a
    distributed.Group) for a data-parallel session, whose rank 0 describes its own device."""
    description = describe(device) + ("" if precision == "fp32" else ", tf32")
    return {
        "engine": "torch",
        "device": {"kind": device.type, "description": group.describe(description) if group else description},
        "versions": versions(),
        "platform": sys.platform,  # node's process.platform names: linux, darwin, win32
        "backend": None,
        "distributed": group.environment(per_process_batch) if group else None,
    }


def available_devices() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"kind": "cpu", "name": cpu_name(), "threads": cpu_cores()}]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            out.append(
                {
                    "kind": "cuda",
                    "index": i,
                    "name": props.name,
                    "memoryBytes": int(props.total_memory),
                    "capability": f"{props.major}.{props.minor}",
                }
            )
    if mps_available():
        out.append({"kind": "mps", "name": f"Apple MPS ({platform.machine()})"})
    return out


def python_info() -> dict[str, str]:
    return {"version": platform.python_version(), "executable": sys.executable}
