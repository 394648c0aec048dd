"""Crash-safe file writes (docs/run-format.md, Conventions): whole files are written to a temporary name beside
the target, flushed to disk and renamed over it; line files are only appended to, one complete line per write.

`write_atomic` mirrors src/main/atomic-write.ts (a hidden `.<name>.<hex>.tmp` beside the target, fsync, rename,
no temp left behind on failure) and also syncs the folder, so the rename itself survives a power cut.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def fsync_dir(directory: str | Path) -> None:
    """Flushes a folder's entries (a rename or a new file in it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Replaces `path` with `data` so that readers see the old or the new content, never a mix."""
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    temp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_file_synced(path: str | Path, data: bytes | str) -> None:
    """Writes a new file (inside a folder that is renamed into place later) and flushes it."""
    payload = data.encode() if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def json_text(value: Any, indent: int | None = None) -> str:
    """JSON as JSON.stringify writes it (compact, or indented): no NaN or Infinity (refused), UTF-8 kept."""
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(value, indent=indent, separators=separators, ensure_ascii=False, allow_nan=False)


def json_line(value: Any) -> str:
    """One jsonl line: compact JSON and its newline."""
    return json_text(value) + "\n"


def append_text(path: str | Path, text: str, sync: bool = False) -> None:
    """Appends complete lines in one write on an O_APPEND descriptor; `sync` flushes the file to disk."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(text.encode())
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def append_lines(path: str | Path, records: Iterable[Any], sync: bool = False) -> None:
    text = "".join(json_line(r) for r in records)
    if text:
        append_text(path, text, sync)
