"""The workbench's training lock (src/main/process-lock.ts): `runs/.training.lock`, a JSON file
`{"pid": N, "what": "<run id>", "since": "<iso>", "host": "<hostname>"}` created with O_EXCL. One run trains at
a time per data directory; a lock whose process is gone (killed, crashed, power lost) is stale and is taken
over. `host` is where the holder runs (the data directory may be shared storage, and a torchrun job's rank 0
takes the lock on whichever node it runs): a lock of another host cannot be judged by its pid, so it is
never taken over from here. Locks without `host` (the workbench's) are this host's.

When the workbench starts the engine it already holds the lock for the run: the engine then only checks that
the lock names that process and this run (`verify`), and leaves it to its owner.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

LOCK_FILE = ".training.lock"


class LockError(Exception):
    """The lock cannot be had: another live process holds it, or it is not what `--lock-held-by` says."""


@dataclass(frozen=True)
class LockInfo:
    pid: int
    what: str
    since: str
    host: str | None = None

    @property
    def here(self) -> bool:
        """Whether the holder runs on this host (so its pid says whether it is alive)."""
        return self.host is None or self.host == socket.gethostname()

    @property
    def live(self) -> bool:
        """Alive, as far as this host can tell: a holder on another host is taken to be."""
        return not self.here or is_alive(self.pid)


def now_iso() -> str:
    """An ISO time as JavaScript's Date.toISOString writes it (UTC, milliseconds, Z)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_alive(pid: int) -> bool:
    """Whether a process with this id exists (process-alive.ts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, but belongs to someone else
    except OSError:
        return False
    return True


def training_busy(holder: LockInfo, file: Path | None = None) -> str:
    """Why this process cannot train now, in the workbench's words (process-lock.ts trainingBusy)."""
    if not holder.here:
        return (
            f"a process on host {holder.host} (pid {holder.pid}) holds the training lock for run {holder.what}: "
            f"wait for that job to end, or stop it with `npm run r2b -- stop {holder.what}`; if it has ended "
            f"without releasing the lock, remove {file or LOCK_FILE}"
        )
    return (
        f"another workbench process (pid {holder.pid}) is training run {holder.what}: wait for it to finish, "
        f"or stop it with `npm run r2b -- stop {holder.what}`"
    )


class TrainingLock:
    def __init__(self, runs_dir: str | Path) -> None:
        self.file = Path(runs_dir) / LOCK_FILE

    def read(self) -> LockInfo | None:
        """The lock file's content, live or not; None when absent or unreadable."""
        try:
            data = json.loads(self.file.read_text())
            pid, what, since, host = data["pid"], data["what"], data["since"], data.get("host")
            if not isinstance(pid, int) or isinstance(pid, bool) or not isinstance(what, str):
                return None
            return LockInfo(pid, what, str(since), host if isinstance(host, str) and host else None)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def holder(self) -> LockInfo | None:
        """The live holder, if any (one on another host counts as live)."""
        info = self.read()
        return info if info is not None and info.live else None

    def acquire(self, what: str) -> LockInfo | None:
        """Takes the lock for this process; returns None when taken, else the live holder that prevents it."""
        self.file.parent.mkdir(parents=True, exist_ok=True)
        mine = {"pid": os.getpid(), "what": what, "since": now_iso(), "host": socket.gethostname()}
        text = json.dumps(mine, separators=(",", ":"))
        for _ in range(2):
            try:
                fd = os.open(self.file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self.holder()
                if holder is not None and not (holder.here and holder.pid == os.getpid()):
                    return holder
                self.file.unlink(missing_ok=True)  # stale, or ours from an earlier run in this process
                continue
            try:
                os.write(fd, text.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            return None
        return self.holder()

    def release(self) -> None:
        """Removes the lock if this process holds it."""
        info = self.read()
        if info is not None and info.here and info.pid == os.getpid():
            self.file.unlink(missing_ok=True)

    def verify(self, pid: int, what: str) -> None:
        """Checks that the lock is held by live process `pid` for `what` (the workbench started us holding it)."""
        info = self.read()
        if info is None:
            raise LockError(
                f"--lock-held-by {pid}: {self.file} does not exist or is unreadable; the process that starts "
                "the engine must hold the training lock, or omit --lock-held-by to let the engine take it"
            )
        if info.pid != pid or info.what != what:
            raise LockError(
                f"--lock-held-by {pid}: the training lock is held by pid {info.pid} for run {info.what}, "
                f"not by pid {pid} for run {what}"
            )
        if not info.here:
            raise LockError(f"--lock-held-by {pid}: the training lock was taken on host {info.host}, not on this one")
        if not is_alive(pid):
            raise LockError(f"--lock-held-by {pid}: process {pid} is not running, so its lock is stale")
