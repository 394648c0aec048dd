"""The engine's command line: `python -m r2b_torch <command>`.

    train --run-dir DIR [--data-home HOME] [--device auto|cpu|cuda|cuda:N|mps] [--lock-held-by PID]
          [--threads N] [--precision fp32|tf32] [--deterministic] [--sync-batchnorm]
        Trains (or resumes) the run folder to its end. stdout: one JSON line at the end, {"run", "status",
        "error"}. Exit 0: finished or stopped (run.json says which); 1: failed or interrupted (run.json has the error);
        2: refused or bad usage (nothing on disk changed). SIGTERM/SIGINT stop at the next step (a second one
        ends the process at once: the run is then interrupted, resumable).
        Under torchrun (WORLD_SIZE > 1) every process runs it: data-parallel training (distributed.py), rank 0
        alone writes the run and prints the JSON line, also for a refusal (status "refused"), since torchrun's
        own exit status is 1 whenever a process exits non-zero; a lost process ends the job (exit 1, the run
        `interrupted` when rank 0 survives). --sync-batchnorm: batch statistics over the global batch (with one
        process a no-op).
    info
        One JSON object: python, torch, the devices available, CPU threads, whether it can train here and why not.
    bench-step --width W --batch B [--input 28] [--channels 1] [--classes 10] [--steps N] [--plain]
               [--device ...] [--threads N]
        JSON timings of one training step: the engine's ResNet-18 (teacher) and each R2B stage kind, and with
        --plain a plain PyTorch ResNet-18 step of the same shapes.
    bench-ddp [--nproc 1,2] [--width 0.25] [--batch 64] [--input 28] [--channels 1] [--classes 10] [--steps 10]
              [--warmup 3] [--stage bnn] [--sync-batchnorm] [--device cpu|cuda] [--threads N] [--json]
        Data-parallel scaling: for each process count K, torchrun K processes training stage KIND on a global
        batch of B; global images per second after warm-up, and efficiency = ips(K) / (K * ips(1)).

Errors are one line on stderr and a non-zero exit code; R2B_DEBUG=1 adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

EXIT_FAILED = 1
EXIT_REFUSED = 2
MIN_TORCH = (2, 1)


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m r2b_torch", description="The PyTorch engine of the R2B Workbench.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train or resume a run folder")
    train.add_argument("--run-dir", required=True, help="the run folder (<home>/runs/<id>)")
    train.add_argument("--data-home", help="the data dir holding datasets/ (default: the folder above runs/)")
    train.add_argument("--device", default="auto", help="auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N, mps")
    train.add_argument("--lock-held-by", type=int, metavar="PID", help="the workbench process holding the lock")
    train.add_argument("--threads", type=int, help="CPU threads for torch (default: one per core)")
    train.add_argument("--precision", default="fp32", choices=("fp32", "tf32"), help="tf32: CUDA only")
    train.add_argument("--deterministic", action="store_true", help="deterministic cuDNN algorithms (CUDA)")
    train.add_argument(
        "--sync-batchnorm",
        action="store_true",
        help="under torchrun: batch-norm statistics over the global batch rather than each process's share",
    )

    commands.add_parser("info", help="what this Python and PyTorch can train on")

    bench = commands.add_parser("bench-step", help="time one training step of each stage kind")
    bench.add_argument("--width", type=float, required=True)
    bench.add_argument("--batch", type=int, required=True)
    bench.add_argument("--input", type=int, default=28)
    bench.add_argument("--channels", type=int, default=1, choices=(1, 3))
    bench.add_argument("--classes", type=int, default=10)
    bench.add_argument("--steps", type=int, default=10)
    bench.add_argument("--plain", action="store_true", help="also time a plain PyTorch ResNet-18 step")
    bench.add_argument("--device", default="auto")
    bench.add_argument("--threads", type=int)

    ddp = commands.add_parser("bench-ddp", help="data-parallel scaling of training steps under torchrun")
    _ddp_arguments(ddp)
    ddp.add_argument("--nproc", default="1,2", help="process counts to measure, e.g. 1,2,4 (default 1,2)")
    ddp.add_argument("--json", action="store_true", help="print the JSON result only")
    ddp.add_argument("--timeout", type=float, default=600, help="seconds one process count may take")

    worker = commands.add_parser("bench-ddp-worker", help=argparse.SUPPRESS)
    _ddp_arguments(worker)
    worker.add_argument("--out", required=True)
    return parser


def _ddp_arguments(parser: argparse.ArgumentParser) -> None:
    """bench-ddp's measurement (the defaults keep it under a minute on two CPU cores)."""
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=64, help="the global batch")
    parser.add_argument("--input", type=int, default=28)
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3))
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10, help="timed steps after warm-up")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--stage", default="bnn", help="teacher, tanh, ban or bnn (the binary stage)")
    parser.add_argument("--sync-batchnorm", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu (gloo) or cuda (nccl, one GPU per process)")
    parser.add_argument("--threads", type=int, help="torch threads per process (default: its share of the CPUs)")


def one_line(error: BaseException) -> str:
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__


def _positive(name: str, value: float | int | None) -> None:
    if value is not None and value <= 0:
        raise UsageError(f"{name} must be positive, not {value}")


def info() -> dict[str, Any]:
    import platform

    out: dict[str, Any] = {
        "engine": "torch",
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "torch": None,
        "numpy": None,
        "cpuThreads": os.cpu_count() or 1,
        "devices": [{"kind": "cpu", "threads": os.cpu_count() or 1}],
        "defaultDevice": None,
        "canTrain": False,
        "why": None,
    }
    try:
        import numpy
    except ImportError:
        out["why"] = f"numpy is not installed for {sys.executable}: pip install numpy (see python/README.md)"
        return out
    out["numpy"] = numpy.__version__
    try:
        import torch
    except ImportError as error:
        out["why"] = (
            f"PyTorch cannot be imported by {sys.executable} ({error}): install torch>=2.1 (see python/README.md)"
        )
        return out
    from . import devices

    version = torch.__version__
    out["torch"] = {"version": version, "cuda": torch.version.cuda, "cudaAvailable": torch.cuda.is_available()}
    out["devices"] = devices.available_devices()
    out["defaultDevice"] = str(devices.select_device("auto"))
    out["cpuThreads"] = devices.cpu_cores()
    out["torchThreads"] = torch.get_num_threads()
    try:
        major, minor = (int(p) for p in version.split("+")[0].split(".")[:2])
    except ValueError:
        major, minor = MIN_TORCH
    if (major, minor) < MIN_TORCH:
        out["why"] = f"PyTorch {version} is older than {MIN_TORCH[0]}.{MIN_TORCH[1]}: upgrade torch"
        return out
    out["canTrain"] = True
    return out


def _train(args: argparse.Namespace) -> int:
    from .distributed import Topology, TopologyError

    _positive("--threads", args.threads)
    try:
        topology = Topology.from_env()
    except TopologyError as error:
        raise UsageError(f"torchrun environment: {error}") from None
    if topology is None:
        # --sync-batchnorm with one process (torchrun --nproc-per-node 1 included): its batch statistics are
        # the global batch's already, so there is nothing to synchronise.
        return _train_one(args)
    return _train_ranked(args, topology)


def _end_line(run: str | None, status: str, error: str | None) -> None:
    print(json.dumps({"run": run, "status": status, "error": error}), flush=True)


def _engine_options(args: argparse.Namespace) -> dict:
    """The options `train` passes on to the engine alike in one process and under torchrun."""
    return {
        "device": args.device,
        "lock_held_by": args.lock_held_by,
        "threads": args.threads,
        "precision": args.precision,
        "deterministic": args.deterministic,
    }


def _train_one(args: argparse.Namespace) -> int:
    from .runner import TrainingFailed, TrainingRefused, install_stop_handlers, train_run

    stop = install_stop_handlers()
    try:
        outcome = train_run(
            args.run_dir,
            args.data_home,
            **_engine_options(args),
            stop=stop,
        )
    except TrainingRefused as error:
        print(str(error), file=sys.stderr)
        return EXIT_REFUSED
    except TrainingFailed as error:
        print(str(error), file=sys.stderr)
        return EXIT_FAILED
    _end_line(outcome.run_id, outcome.status, outcome.error)
    if outcome.status in ("failed", "interrupted"):
        # interrupted: the workbench that started it ended (--lock-held-by), the run resumes later.
        print(outcome.error, file=sys.stderr)
        return EXIT_FAILED
    return 0


def _train_ranked(args: argparse.Namespace, topology) -> int:
    """One process of a torchrun job. Rank 0 speaks for the job (the JSON line on stdout, the reason on
    stderr); another process only says what it alone saw (its own error, a lost peer)."""
    from pathlib import Path

    from .runner import TrainingFailed, TrainingInterrupted, TrainingRefused, install_stop_handlers, train_distributed

    writer = topology.rank == 0
    run = Path(args.run_dir).name or None
    stop = install_stop_handlers(grace_seconds=5.0)

    def report(error: BaseException) -> None:
        status = "refused" if isinstance(error, TrainingRefused) else "failed"
        _end_line(run, status, str(error))
        print(str(error), file=sys.stderr, flush=True)

    try:
        outcome = train_distributed(
            args.run_dir,
            topology,
            args.data_home,
            **_engine_options(args),
            sync_batch_norm=args.sync_batchnorm,
            stop=stop,
            report=report,
        )
    except (TrainingRefused, TrainingFailed, TrainingInterrupted) as error:
        refused = isinstance(error, TrainingRefused)
        if getattr(error, "reported", False):
            return EXIT_REFUSED if refused else EXIT_FAILED
        if writer:
            status = "refused" if refused else "interrupted" if isinstance(error, TrainingInterrupted) else "failed"
            _end_line(run, status, str(error))
        if writer or not getattr(error, "agreed", False):
            print(str(error), file=sys.stderr, flush=True)
        return EXIT_REFUSED if refused else EXIT_FAILED
    if writer:
        _end_line(outcome.run_id, outcome.status, outcome.error)
        if outcome.status in ("failed", "interrupted"):
            print(outcome.error, file=sys.stderr)
    return EXIT_FAILED if outcome.status in ("failed", "interrupted") else 0


def _bench(args: argparse.Namespace) -> int:
    from .bench import bench_step
    from .devices import configure, select_device

    _positive("--threads", args.threads)
    for name in ("width", "batch", "input", "steps", "classes"):
        _positive(f"--{name}", getattr(args, name))
    device = select_device(args.device)
    configure(device, args.threads)
    result = bench_step(
        args.width,
        args.batch,
        input_size=args.input,
        channels=args.channels,
        classes=args.classes,
        steps=args.steps,
        plain=args.plain,
        device=device,
    )
    print(json.dumps(result, indent=2))
    return 0


def _bench_ddp(args: argparse.Namespace) -> int:
    from .bench import bench_ddp, ddp_table

    try:
        counts = [int(k) for k in args.nproc.split(",") if k.strip()]
    except ValueError:
        raise UsageError(f"--nproc {args.nproc}: expected process counts such as 1,2,4") from None
    if not counts or any(k < 1 for k in counts):
        raise UsageError(f"--nproc {args.nproc}: expected positive process counts")
    _positive("--threads", args.threads)
    for name in ("width", "batch", "input", "steps", "classes"):
        _positive(f"--{name}", getattr(args, name))
    from .bench import KINDS

    if args.stage not in KINDS:
        raise UsageError(f"--stage {args.stage}: use one of {', '.join(KINDS)}")
    for k in counts:
        if args.batch % k:
            raise UsageError(f"--batch {args.batch} cannot be split evenly over {k} processes")
    result = bench_ddp(args, counts)
    print(json.dumps(result) if args.json else ddp_table(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command == "info":
            print(json.dumps(info(), indent=2))
            return 0
        if args.command == "train":
            return _train(args)
        if args.command == "bench-ddp":
            return _bench_ddp(args)
        if args.command == "bench-ddp-worker":
            from .bench import ddp_worker

            return ddp_worker(args)
        return _bench(args)
    except SystemExit as exit:  # --help
        return int(exit.code or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ImportError as error:
        if os.environ.get("R2B_DEBUG"):
            raise
        print(
            f"{error.name or 'a module'} cannot be imported by {sys.executable} ({one_line(error)}): install "
            "torch>=2.1 and numpy (see python/README.md); `python -m r2b_torch info` says what is missing",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    except BaseException as error:  # noqa: BLE001 - one line, not a traceback
        if os.environ.get("R2B_DEBUG"):
            raise
        name = type(error).__name__
        known = name in ("UsageError", "DeviceError", "ValueError", "FileNotFoundError")
        print(one_line(error) if known else f"{name}: {one_line(error)}", file=sys.stderr)
        return EXIT_REFUSED if name in ("UsageError", "DeviceError") else EXIT_FAILED
