"""Data-parallel training under torchrun (DistributedDataParallel): the processes of one job, what each trains
on, how they agree, and what is left when one of them ends.

torchrun starts one process per device (`python -m torch.distributed.run --nproc-per-node N -m r2b_torch train
...`) and tells each its place in the environment: WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE and
GROUP_WORLD_SIZE (the nodes). `train` is one process when WORLD_SIZE is absent or 1.

- **Devices and threads.** On CUDA process r takes `cuda:LOCAL_RANK` and the group is NCCL's (with gloo for
  the small host-side exchanges, so they never synchronise the GPU); on the CPU the group is gloo's and the
  processes of a node split the CPUs they may run on into equal shares, one thread per CPU of the share.
- **Data.** The config's batch is the global batch. Every process computes the same seeded order of the epoch
  and the same augmentation draws of each global batch, and prepares rows [r b, (r + 1) b) of it (b =
  batch / world size), so every training image is seen once per epoch and a row is augmented the same
  whichever process takes it (data.py, augment.py).
- **Gradients.** The student is wrapped in DDP, which averages the processes' gradients: with equal shares the
  average of the shares' mean losses is the global batch's mean loss, so the gradient is the one process's.
  Every loss of a stage is a mean over images (cross-entropy, distillation, attention maps), so this holds.
- **Batch norm.** With SyncBatchNorm (`--sync-batchnorm`) the training batch statistics are the global batch's
  (one all-reduce per layer forward and one backward): two processes compute what one does, to rounding.
  Without it (the default, as in torchvision's reference recipes: at the presets' per-process batches of 32
  and more, the statistics of a share are good ones) each process normalises with its share's statistics.
  Either way the moving statistics follow the global batch's mean and variance (the shares' statistics are
  combined once per step), so every process keeps the same model, bit for bit, and evaluation is of one model.
- **Writing.** Rank 0 alone writes the run folder and talks to the workbench; every process reads the
  config, the dataset and the checkpoints it resumes from. Checkpoints hold the plain student (no DDP
  wrapper, no SyncBatchNorm modules exist), so they load at any world size and into the tfjs engine.
- **Control.** Rank 0 reads stop-request and pause-request; at every step boundary the processes combine
  one small control word (rank 0's requests, any process's SIGTERM), so all stop or hold at the same step.
- **Faults.** Collectives time out (PROCESS_GROUP_TIMEOUT) rather than hang; a process that finds a peer gone
  says which one and how it ended, as far as it can tell, and rank 0 marks the run interrupted (resumable).
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from .layers import BnUpdate

PROCESS_GROUP_TIMEOUT = timedelta(minutes=5)
"""How long a collective may wait for the other processes: past it a job whose peer hangs fails instead of
hanging forever. Longer than anything rank 0 does alone between two collectives (a checkpoint of the largest
model on slow shared storage); R2B_DIST_TIMEOUT_SECONDS overrides it."""

CONTINUE, STOP, PAUSE = 0, 1, 2


class TopologyError(ValueError):
    """The torchrun environment is not usable (a malformed variable)."""


@dataclass(frozen=True)
class Topology:
    """This process's place in a torchrun job."""

    world_size: int
    rank: int
    local_rank: int
    local_world_size: int
    nodes: int

    @staticmethod
    def from_env(env: dict[str, str] | None = None) -> Topology | None:
        """The job torchrun described in the environment; None for one process (WORLD_SIZE absent or 1)."""
        env = dict(os.environ) if env is None else env

        def number(name: str, default: int | None = None) -> int:
            value = env.get(name)
            if value is None or value == "":
                if default is None:
                    raise TopologyError(f"{name} is not set: start distributed training with torchrun")
                return default
            try:
                return int(value)
            except ValueError:
                raise TopologyError(f"{name}={value!r} is not an integer") from None

        world = number("WORLD_SIZE", 1)
        if world <= 1:
            return None
        rank = number("RANK")
        local_rank = number("LOCAL_RANK", rank)
        local_world = number("LOCAL_WORLD_SIZE", world)
        nodes = number("GROUP_WORLD_SIZE", max(1, world // max(1, local_world)))
        if not (0 <= rank < world and 0 <= local_rank < local_world <= world):
            raise TopologyError(
                f"RANK {rank}, LOCAL_RANK {local_rank}, LOCAL_WORLD_SIZE {local_world} do not fit WORLD_SIZE {world}"
            )
        return Topology(world, rank, local_rank, local_world, nodes)


def cpu_share(cpus: Iterable[int], local_rank: int, local_world_size: int) -> list[int]:
    """The CPUs local process `local_rank` of `local_world_size` takes: an equal contiguous share of the CPUs
    the node's processes may use (their common affinity mask), so the processes never compete for a core;
    with fewer CPUs than processes, one CPU each, in turn."""
    cpus = sorted(cpus)
    if len(cpus) < local_world_size:
        return [cpus[local_rank % len(cpus)]]
    start = local_rank * len(cpus) // local_world_size
    end = (local_rank + 1) * len(cpus) // local_world_size
    return cpus[start:end]


def pin_cpu_share(topology: Topology) -> int:
    """Pins this process to its share of the CPUs (where the OS has affinity masks); returns the share's size,
    the torch threads it should use."""
    try:
        cpus = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
        return max(1, count // topology.local_world_size)
    share = cpu_share(cpus, topology.local_rank, topology.local_world_size)
    try:
        os.sched_setaffinity(0, share)
    except OSError:
        pass
    return len(share)


def timeout() -> timedelta:
    value = os.environ.get("R2B_DIST_TIMEOUT_SECONDS")
    return timedelta(seconds=float(value)) if value else PROCESS_GROUP_TIMEOUT


class PeerLost(Exception):
    """A collective failed because another process of the job ended or cannot be reached."""


_TRANSPORT_MARKERS = ("gloo", "nccl", "connection", "broken pipe", "timed out", "timeout", "socket")


def is_transport_error(error: BaseException) -> bool:
    """Whether an error comes from the process group rather than from this process's own work."""
    if isinstance(error, (PeerLost, dist.DistError)):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and any(marker in text for marker in _TRANSPORT_MARKERS)


def _process_state(pid: int) -> tuple[str, int | None] | None:
    """(state letter, waitpid-style exit status of a zombie) from /proc, or None when there is no such
    process. Linux only; elsewhere every process reads as running."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    except OSError:
        return ("R", None)
    state = fields[0]
    status = int(fields[49]) if state == "Z" and len(fields) > 49 else None
    return state, status


def _how_it_ended(status: int | None) -> str:
    if status is None:
        return ""
    if status & 0x7F:
        return f" (killed by signal {status & 0x7F})"
    return f" (exit code {status >> 8})"


class Group:
    """The live process group of a torchrun job, as the engine uses it: this process's rank, the collectives
    of a training step, the control word, and what to say when a peer is gone."""

    def __init__(self, topology: Topology, device: torch.device, sync_batch_norm: bool) -> None:
        self.topology = topology
        self.rank = topology.rank
        self.world_size = topology.world_size
        self.device = device
        self.sync_batch_norm = sync_batch_norm
        self.backend = "nccl" if device.type == "cuda" else "gloo"
        self.peers: list[tuple[str, int]] = []
        self.ended: dict[int, str] = {}
        """Processes of this host seen to end (rank -> how, e.g. " (killed by signal 9)"), by _watch_peers."""
        self.device_group: Any = None
        """The group the device's tensors travel in (gradients, SyncBatchNorm, a step's sums): the default
        (gloo) one on the CPU, an NCCL one on CUDA."""

    @property
    def is_writer(self) -> bool:
        """Rank 0 writes the run folder; the others only read."""
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int]:
        return self.rank, self.world_size

    def start(self) -> None:
        """Joins the job (env:// rendezvous through torchrun's store) in a gloo group for the host-side
        exchanges: what each process found before training (so all refuse together), the control word (never
        waiting on a GPU) and evaluation sums; and learns where every process runs."""
        dist.init_process_group("gloo", timeout=timeout())
        self.peers = [tuple(p) for p in self.gather((socket.gethostname(), os.getpid()))]
        self._watch_peers()

    def _watch_peers(self) -> None:
        """Watches the other processes of this host (Linux pidfds, no polling): the moment one ends, its exit
        status is read from /proc while it is a zombie, before torchrun (its parent) reaps it, which it does
        within its monitor interval (0.1 s) - so a lost peer can be named with how it ended."""
        if not hasattr(os, "pidfd_open"):
            return
        host = socket.gethostname()
        fds: dict[int, tuple[int, int]] = {}
        for rank, (peer_host, pid) in enumerate(self.peers):
            if rank != self.rank and peer_host == host:
                try:
                    fds[os.pidfd_open(pid)] = (rank, pid)
                except OSError:
                    pass
        if not fds:
            return

        def watch() -> None:
            poller = select.poll()
            for fd in fds:
                poller.register(fd, select.POLLIN)
            pending = dict(fds)
            while pending:
                for fd, _ in poller.poll():
                    rank, pid = pending.pop(fd, (None, None))
                    if rank is None:
                        continue
                    state = _process_state(pid)
                    self.ended.setdefault(rank, _how_it_ended(state[1]) if state is not None else "")
                    poller.unregister(fd)
                    os.close(fd)

        threading.Thread(target=watch, name="r2b-peer-watch", daemon=True).start()

    def attach_device(self) -> None:
        """The group of the device's tensors, once every process has its device: NCCL's on CUDA."""
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            self.device_group = dist.new_group(backend="nccl", timeout=timeout())
        else:
            self.device_group = dist.group.WORLD

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()

    # --- collectives -------------------------------------------------------------------------------------

    def _call(self, collective, *args, **kwargs):
        try:
            return collective(*args, **kwargs)
        except RuntimeError as error:
            raise PeerLost(str(error)) from None

    def gather(self, value: Any) -> list[Any]:
        """Every process's `value` (picklable), in rank order, on every process."""
        out: list[Any] = [None] * self.world_size
        self._call(dist.all_gather_object, out, value)
        return out

    def all_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sums `tensor` (on the device) over the processes, in place (the same bits on every process)."""
        self._call(dist.all_reduce, tensor, group=self.device_group)
        return tensor

    def control(self, stop: bool, pause: bool) -> int:
        """The step boundary's decision, the same on every process: STOP when any process asks (rank 0 for a
        stop-request, any process for its SIGTERM), else PAUSE when rank 0 reads a pause-request, else
        CONTINUE. Two bytes over the host transport."""
        word = torch.tensor([int(stop), int(pause and self.is_writer)], dtype=torch.uint8)
        self._call(dist.all_reduce, word, op=dist.ReduceOp.MAX)
        if word[0]:
            return STOP
        return PAUSE if word[1] else CONTINUE

    # --- a training step ---------------------------------------------------------------------------------

    def reduce_step(self, values: torch.Tensor, counts: torch.Tensor, updates: list[BnUpdate]) -> list[float]:
        """One all-reduce per step: the step's loss components (each process's share mean -> the global
        batch's mean), its hit counts (summed) and, without SyncBatchNorm, the batch statistics of every BN
        layer (combined into the global batch's mean and biased variance, written back into `updates`, so
        every process moves its moving statistics the same way). Returns the losses, then the counts."""
        combine = [] if self.sync_batch_norm else updates
        parts = [values.double(), counts.double()]
        for u in combine:
            mean = u.mean.double()
            parts += [mean, u.variance.double() + mean * mean]
        flat = torch.cat(parts)
        self.all_sum(flat)
        n = self.world_size
        losses = (flat[: values.numel()] / n).tolist()
        hits = flat[values.numel() : values.numel() + counts.numel()].tolist()
        at = values.numel() + counts.numel()
        for u in combine:
            c = u.mean.numel()
            mean = flat[at : at + c] / n
            second = flat[at + c : at + 2 * c] / n
            at += 2 * c
            u.mean = mean.to(u.mean.dtype)
            u.variance = (second - mean * mean).clamp_min(0.0).to(u.variance.dtype)
        return losses + hits

    def batch_norm(
        self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, epsilon: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """SyncBatchNorm's training pass (layers.ForwardContext.sync)."""
        return _SyncBatchNormFunction.apply(x, gamma, beta, epsilon, self)

    # --- faults ------------------------------------------------------------------------------------------

    def lost_peer(self, wait: float = 1.0) -> str:
        """Which process ended, and how, as far as this one can tell: a peer on this host whose process is
        gone or a zombie (its exit status read from /proc before torchrun reaps it), else that some process
        of the job ended or cannot be reached."""
        host = socket.gethostname()
        deadline = time.monotonic() + wait
        while True:
            if self.ended:
                rank = min(self.ended)
                return f"process {rank} of {self.world_size} ended{self.ended[rank]}"
            for rank, (peer_host, pid) in enumerate(self.peers):
                if rank == self.rank or peer_host != host:
                    continue
                state = _process_state(pid)
                if state is None or state[0] in ("Z", "X"):
                    how = _how_it_ended(state[1]) if state is not None else ""
                    return f"process {rank} of {self.world_size} ended{how}"
            if time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        return f"a process of the {self.world_size} ended or cannot be reached"

    def describe(self, base: str) -> str:
        """environment.device.description of a distributed session, from one process's description."""
        nodes = self.topology.nodes
        where = f" on {nodes} nodes" if nodes > 1 else ""
        return f"{self.world_size} processes{where} × {base} ({self.backend})"

    def environment(self, per_process_batch: int) -> dict[str, Any]:
        """run.json's environment.distributed."""
        return {
            "worldSize": self.world_size,
            "nodes": self.topology.nodes,
            "backend": self.backend,
            "perProcessBatch": per_process_batch,
            "syncBatchNorm": self.sync_batch_norm,
        }


class Replica:
    """A stage's student as every process holds it: wrapped in DDP over the group (gradients averaged in
    buckets while the backward pass runs). The wrapper is only used for the training forward pass; the
    student itself is what is evaluated and checkpointed."""

    def __init__(self, group: Group, student: torch.nn.Module) -> None:
        from torch.nn.parallel import DistributedDataParallel

        self.group = group
        self.student = student
        # broadcast_buffers off: the moving statistics are moved identically on every process (reduce_step).
        # find_unused_parameters off: every weight of a stage's student reaches its loss.
        # The engine's weights keep tfjs's layouts (some are strided views), so DDP's buckets copy those
        # gradients rather than alias them: correct, and said once per process in a warning that is noise here.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*broadcast_buffers.*", category=FutureWarning)
            self.module = DistributedDataParallel(
                student, device_ids=None, broadcast_buffers=False, process_group=group.device_group
            )

    def gradients(self) -> dict[str, torch.Tensor | None]:
        """The averaged gradients after a backward pass by tfjs local name, taken from the parameters (which
        then hold none, so the next backward pass starts from nothing)."""
        out = {}
        for name, entry in self.student.store.weights.items():
            tensor = entry.tensor
            out[name] = tensor.grad
            tensor.grad = None
        return out


class _SyncBatchNormFunction(torch.autograd.Function):
    """Batch norm over the global batch: the shares' per-channel sums combined by one all-reduce (in float64,
    so the global variance does not lose digits to E[x^2] - E[x]^2), normalisation with PyTorch's fused
    inference kernel; backward reduces the two per-channel sums the input gradient needs. Returns the output
    and the global batch mean and biased variance (for the moving statistics)."""

    @staticmethod
    def forward(ctx, x, gamma, beta, epsilon: float, group: Group):
        channels = x.shape[1]
        count = x.numel() // channels
        with torch.no_grad():
            variance, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
            m = mean.double()
            stats = torch.cat([m * count, (variance.double() + m * m) * count, m.new_tensor([count])])
            group.all_sum(stats)
            total = stats[-1]
            global_mean = stats[:channels] / total
            global_variance = (stats[channels : 2 * channels] / total - global_mean * global_mean).clamp_min(0.0)
            mean32 = global_mean.to(x.dtype)
            variance32 = global_variance.to(x.dtype)
            invstd = torch.rsqrt(variance32 + epsilon)
        out = F.batch_norm(x, mean32, variance32, gamma, beta, False, 0.0, epsilon)
        ctx.save_for_backward(x, gamma, mean32, invstd)
        ctx.total = float(total)
        ctx.group = group
        ctx.mark_non_differentiable(mean32, variance32)
        return out, mean32, variance32

    @staticmethod
    def backward(ctx, grad, _mean_grad, _variance_grad):
        x, gamma, mean, invstd = ctx.saved_tensors
        shape = (1, -1, 1, 1)
        xhat = (x - mean.view(shape)) * invstd.view(shape)
        sum_dy = grad.sum(dim=(0, 2, 3))
        sum_dy_xhat = (grad * xhat).sum(dim=(0, 2, 3))
        # gamma's and beta's gradients are this share's; DDP averages them like every other weight's.
        sums = torch.cat([sum_dy, sum_dy_xhat]).double()
        ctx.group.all_sum(sums)
        channels = x.shape[1]
        mean_dy = (sums[:channels] / ctx.total).to(x.dtype)
        mean_dy_xhat = (sums[channels:] / ctx.total).to(x.dtype)
        grad_x = (grad - mean_dy.view(shape) - xhat * mean_dy_xhat.view(shape)) * (gamma * invstd).view(shape)
        return grad_x, sum_dy_xhat, sum_dy, None, None
