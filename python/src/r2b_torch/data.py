"""The dataset store read directly with numpy memmaps (src/main/datasets/store.ts and reader.ts).

`<home>/datasets/<id>/` holds `manifest.json` and, per split, `<split>-images.u8` (N x H x W x C uint8,
contiguous) and `<split>-labels.u16` (N little-endian uint16). Batches are the tfjs reader's: training
batches visit permutation(N, mulberry32(mixSeed(seed, epoch, 1))) in whole batches, augmented from the stream
mulberry32(mixSeed(seed, epoch, 2)); the test split is served in one fixed shuffled order (seed 0x7e57), so
any prefix is a uniform sample. Given the same seed the images, their order and their augmentation are the
tfjs engine's bit for bit (see augment.py). Batches are float32 NHWC numpy arrays, with one-hot or mixed
float32 label rows; `to_torch` makes NCHW tensors of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from .augment import (
    apply_batch_augmentation,
    centre_crop,
    draw_batch_augmentation,
    normalisation,
    normalise_batch,
    one_hot,
)
from .config import AugmentSpec
from .rng import mix_seed, mulberry32, permutation

MANIFEST_FILE = "manifest.json"
SPLITS = ("train", "test")
EVALUATION_ORDER_SEED = 0x7E57


def data_home(env: dict[str, str] | None = None) -> Path:
    """paths.ts dataHome for a headless host: R2B_HOME, else the platform's data dir (Linux: XDG)."""
    env = dict(os.environ) if env is None else env
    if env.get("R2B_HOME"):
        return Path(env["R2B_HOME"])
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "r2b-workbench"


def dataset_dir(dataset_id: str, home: str | Path | None = None) -> Path:
    return Path(home if home is not None else data_home()) / "datasets" / dataset_id


def images_file(split: str) -> str:
    return f"{split}-images.u8"


def labels_file(split: str) -> str:
    return f"{split}-labels.u16"


@dataclass
class Batch:
    images: np.ndarray
    """float32 [N, H, W, C], normalised."""
    labels: np.ndarray
    """float32 [N, classes] target distributions."""


def to_torch(batch: Batch, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """NCHW images and label rows as tensors."""
    images = torch.from_numpy(np.ascontiguousarray(batch.images)).permute(0, 3, 1, 2).contiguous()
    return images.to(device), torch.from_numpy(batch.labels).to(device)


class DatasetReader:
    """A stored dataset, opened read-only: images through memmaps, labels in memory (2 bytes per image)."""

    def __init__(self, directory: str | Path, input_size: int | None = None) -> None:
        """`input_size`: the model's input side when smaller than the stored images (reader.ts ReaderOptions):
        evaluation takes their centred window, training a resized crop (or the centred window) of them."""
        self.dir = Path(directory)
        self.manifest = json.loads((self.dir / MANIFEST_FILE).read_text())
        h, w, c = self.manifest["shape"]
        self.shape = (h, w, c)
        if input_size is not None and input_size > min(h, w):
            raise ValueError(
                f"the dataset stores {h}x{w} images, smaller than the input of {input_size}: "
                f"import it again with --size {input_size} or more"
            )
        self.input_size = input_size
        self.input_shape = self.shape if input_size is None else (input_size, input_size, c)
        self.norm = normalisation(self.manifest["stats"]["mean"], self.manifest["stats"]["std"])
        self._images: dict[str, np.ndarray] = {}
        self._labels: dict[str, np.ndarray] = {}
        self._evaluation_order: np.ndarray | None = None
        for split in SPLITS:
            count = self.manifest["splits"][split]
            path = self.dir / images_file(split)
            size = path.stat().st_size
            if size != count * h * w * c:
                raise ValueError(f"{path}: {size} bytes, the manifest says {count} images of {h * w * c} bytes")
            label_path = self.dir / labels_file(split)
            labels = np.fromfile(label_path, dtype="<u2")
            if labels.shape[0] != count:
                raise ValueError(f"{label_path}: {labels.nbytes} bytes, expected {count * 2}")
            self._labels[split] = labels
            self._images[split] = (
                np.memmap(path, dtype=np.uint8, mode="r", shape=(count, h, w, c))
                if count > 0
                else np.zeros((0, h, w, c), dtype=np.uint8)
            )

    @property
    def classes(self) -> int:
        return len(self.manifest["classes"])

    @property
    def train_size(self) -> int:
        return self.size("train")

    @property
    def test_size(self) -> int:
        return self.size("test")

    def size(self, split: str) -> int:
        return int(self._labels[split].shape[0])

    def labels(self, split: str) -> np.ndarray:
        return self._labels[split]

    def read_raw(self, split: str, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 pixels [n, H, W, C] and labels of the given images (any order, repeats allowed)."""
        indices = np.asarray(indices, dtype=np.int64)
        count = self.size(split)
        if indices.size and (indices.min() < 0 or indices.max() >= count):
            raise IndexError(f"images outside the {count} images of {split}")
        return np.asarray(self._images[split][indices]), self._labels[split][indices]

    def epoch_order(self, split: str, seed: int, epoch: int) -> np.ndarray:
        """The order images are visited in an epoch: a seeded permutation, different for each epoch."""
        return permutation(self.size(split), mulberry32(mix_seed(seed, epoch, 1)))

    def evaluation_order(self) -> np.ndarray:
        """A seeded permutation of the test split, fixed for the dataset (not tied to a run's seed)."""
        if self._evaluation_order is None:
            self._evaluation_order = permutation(self.size("test"), mulberry32(EVALUATION_ORDER_SEED))
        return self._evaluation_order

    def train_batches(
        self,
        batch_size: int,
        epoch: int,
        seed: int,
        augment: AugmentSpec | None = None,
        limit: int = 0,
        drop_last: bool = True,
        split: str = "train",
        shard: tuple[int, int] | None = None,
    ) -> Iterator[Batch]:
        """Shuffled, augmented training batches for one epoch (reader.ts trainBatches). With `shard` (rank,
        world size) each batch is this process's share of the global batch of `batch_size`: rows
        [rank * b, (rank + 1) * b) with b = batch_size / world size, prepared exactly as the same rows of the
        whole batch (the augmentation of every image of the batch is drawn, only the share's is applied)."""
        if batch_size < 1:
            raise ValueError(f"batch size {batch_size}")
        rank, world = shard if shard is not None else (0, 1)
        if world > 1 and not drop_last:
            raise ValueError("a batch shared by processes is a whole batch: drop_last must be on")
        if batch_size % world:
            raise ValueError(f"batch size {batch_size} is not divisible by {world} processes")
        share = batch_size // world
        order = self.epoch_order(split, seed, epoch)
        random = mulberry32(mix_seed(seed, epoch, 2))
        total = len(order) if not drop_last else len(order) - len(order) % batch_size
        if limit and limit > 0:
            total = min(total, limit * batch_size)
        for start in range(0, total, batch_size):
            indices = order[start : min(start + batch_size, total)]
            plan = draw_batch_augmentation(len(indices), augment, random, self.shape[:2], self.input_size)
            rows = np.arange(len(indices)) if world == 1 else np.arange(rank * share, (rank + 1) * share)
            sources = plan.sources(rows)
            pixels, labels = self.read_raw(split, indices[sources])
            images, targets = apply_batch_augmentation(plan, pixels, labels, sources, rows, self.classes, self.norm)
            yield Batch(images, targets)

    def _unaugmented(self, split: str, indices: np.ndarray, batch_size: int) -> Iterator[Batch]:
        for start in range(0, len(indices), batch_size):
            pixels, labels = self.read_raw(split, indices[start : start + batch_size])
            yield Batch(self._normalised(pixels), one_hot(labels, self.classes))

    def test_batches(self, batch_size: int, limit: int = 0) -> Iterator[Batch]:
        """The test split, un-augmented, in the fixed evaluation order (the engine's DataSource.testBatches)."""
        order = self.evaluation_order()
        total = min(limit, len(order)) if limit and limit > 0 else len(order)
        return self._unaugmented("test", order[:total], batch_size)

    def test_range(self, start: int, end: int) -> Batch:
        """Positions [start, end) of the evaluation order, un-augmented: one evaluation batch of test_batches."""
        return next(self._unaugmented("test", self.evaluation_order()[start:end], max(1, end - start)))

    def eval_batches(self, split: str, batch_size: int, limit: int = 0) -> Iterator[Batch]:
        """Every image of a split (or the first `limit`) in stored order, normalised, never augmented."""
        count = self.size(split)
        total = min(limit, count) if limit and limit > 0 else count
        return self._unaugmented(split, np.arange(total), batch_size)

    def test_images(self, indices: list[int] | np.ndarray) -> Batch:
        """Test images by index (probe sets), un-augmented."""
        pixels, labels = self.read_raw("test", np.asarray(indices))
        return Batch(self._normalised(pixels), one_hot(labels, self.classes))

    def _normalised(self, pixels: np.ndarray) -> np.ndarray:
        """Un-augmented images as the model sees them: the centred window of a larger store, normalised."""
        if self.input_size is not None:
            pixels = centre_crop(pixels, self.input_size)
        return normalise_batch(pixels, self.norm.lut)


def open_dataset(dataset_id: str, home: str | Path | None = None, input_size: int | None = None) -> DatasetReader:
    return DatasetReader(dataset_dir(dataset_id, home), input_size)


def run_input_size(data) -> int | None:
    """The reader's input side for a run's DataSpec: set only when the run crops a larger store."""
    return data.input_size if data.stored_size > 0 else None


def channel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of pixel/255 over uint8 images [N, H, W, C], from the byte histogram as
    DatasetWriter.stats computes them (a constant channel gets std 1)."""
    means, stds = [], []
    for c in range(images.shape[-1]):
        hist = np.bincount(images[..., c].reshape(-1), minlength=256).astype(np.float64)
        v = np.arange(256, dtype=np.float64)
        n = hist.sum()
        m = (hist * v).sum() / n if n > 0 else 0.0
        variance = max((hist * v * v).sum() / n - m * m, 0.0) if n > 0 else 0.0
        means.append(m / 255)
        stds.append(float(np.sqrt(variance)) / 255 if variance > 0 else 1.0)
    return means, stds


def write_dataset(
    home: str | Path,
    dataset_id: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    classes: list[str],
    name: str | None = None,
) -> dict:
    """Writes a dataset in the store format (uint8 images [N, H, W, C], integer labels), published by renaming
    a temporary folder as DatasetWriter does. Returns the manifest. For tests and tools: imports stay with the
    TypeScript side."""
    root = Path(home) / "datasets"
    root.mkdir(parents=True, exist_ok=True)
    target = root / dataset_id
    if target.exists():
        raise FileExistsError(f"a dataset with id {dataset_id!r} already exists")
    shape = list(train[0].shape[1:])
    temp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    digest = hashlib.sha256()
    total = 0
    for split, (images, labels) in zip(SPLITS, (train, test)):
        images = np.ascontiguousarray(images, dtype=np.uint8)
        if list(images.shape[1:]) != shape:
            raise ValueError(f"{split} images of shape {images.shape[1:]}, expected {shape}")
        data = images.tobytes()
        (temp / images_file(split)).write_bytes(data)
        (temp / labels_file(split)).write_bytes(np.asarray(labels, dtype="<u2").tobytes())
        digest.update(data)
        total += len(data)
    mean, std = channel_stats(np.ascontiguousarray(train[0], dtype=np.uint8))
    counts = {
        split: np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(classes)).tolist()
        for split, (_, labels) in zip(SPLITS, (train, test))
    }
    manifest = {
        "version": 1,
        "name": name or dataset_id,
        "format": "imagefolder",
        "source": {"path": str(temp), "sha256": digest.hexdigest(), "bytes": total},
        "classes": classes,
        "shape": shape,
        "splits": {"train": int(len(train[1])), "test": int(len(test[1]))},
        "classCounts": counts,
        "stats": {"mean": mean, "std": std},
        "skipped": {"count": 0, "files": []},
        "createdAt": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + "000Z",
        "id": dataset_id,
    }
    (temp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    temp.rename(target)
    return manifest


class Prefetch:
    """Iterates `source` on a background thread, up to `depth` items ahead, in order (the batches and their
    seeded augmentation are exactly those of iterating it directly). For accelerators, so the CPU prepares
    the next batch while the device trains on this one; `close()` stops the thread (a stage stopped early)."""

    _END = object()

    def __init__(self, source, depth: int = 2) -> None:
        import queue
        import threading

        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None

        def run() -> None:
            try:
                for item in source:
                    while not self._stop.is_set():
                        try:
                            self._queue.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if self._stop.is_set():
                        return
            except BaseException as error:  # noqa: BLE001 - handed to the consumer
                self._error = error
            finally:
                while not self._stop.is_set():
                    try:
                        self._queue.put(Prefetch._END, timeout=0.1)
                        break
                    except queue.Full:
                        continue

        self._thread = threading.Thread(target=run, name="r2b-prefetch", daemon=True)
        self._thread.start()

    def __iter__(self):
        return self

    def __next__(self):
        item = self._queue.get()
        if item is Prefetch._END:
            if self._error is not None:
                raise self._error
            raise StopIteration
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
