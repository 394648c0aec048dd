"""CPU-side augmentation and normalisation of uint8 H x W x C images into float32 NHWC (engine/augment.ts).

The same operations in the same order, drawing from the same seeded stream (rng.py) in the same order, with
the same double-precision arithmetic rounded to float32 at the same places: given the same seed, batches are
bit-identical to the tfjs engine's (checked by the conformance tests). The only possible source of difference
is the C library's cos/sin/log against V8's in the last bit of a double, which reaches a float32 pixel or a
rejection-sampling decision with vanishing probability; it has not been observed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import AugmentSpec
from .rng import Random, beta, permutation, random_int


def normalisation_table(mean: list[float], std: list[float]) -> np.ndarray:
    """lut[c, v] = (v / 255 - mean[c]) / std[c] in doubles, stored as float32 (augment.ts's Float32Array)."""
    v = np.arange(256, dtype=np.float64)
    return np.stack([(v / 255 - m) / s for m, s in zip(mean, std)]).astype(np.float32)


def normalise_batch(raw: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W, C] -> float32 through the table: the evaluation path."""
    channels = np.arange(lut.shape[0])
    return lut[channels, raw.astype(np.intp)]


@dataclass(frozen=True)
class ImageTransform:
    """One image's geometric augmentation: shift (dx, dy), horizontal flip, rotation angle in radians."""

    dx: int
    dy: int
    flip: bool
    angle: float


def draw_transform(random: Random, options: AugmentSpec) -> ImageTransform:
    pad = options.crop_padding or 0
    dx = random_int(random, 2 * pad + 1) - pad if pad > 0 else 0
    dy = random_int(random, 2 * pad + 1) - pad if pad > 0 else 0
    flip = random() < 0.5 if options.flip else False
    degrees = options.rotation_degrees or 0
    angle = ((random() * 2 - 1) * degrees * math.pi) / 180 if degrees > 0 else 0.0
    return ImageTransform(dx, dy, flip, angle)


def transform_image(src: np.ndarray, t: ImageTransform, lut: np.ndarray) -> np.ndarray:
    """The transformed, normalised image (uint8 H x W x C -> float32). Output pixel (x, y) reads the source at
    the inverse transform: undo the shift, undo the rotation about the centre, undo the flip. Pixels outside
    the source are black (0) before normalisation; rotation interpolates bilinearly."""
    height, width, channels = src.shape
    ys, xs = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij")
    if t.angle == 0:
        sy = (ys - t.dy).astype(np.intp)
        sx = (xs - t.dx).astype(np.intp)
        if t.flip:
            sx = width - 1 - sx
        inside = (sy >= 0) & (sy < height) & (sx >= 0) & (sx < width)
        pixels = src[np.clip(sy, 0, height - 1), np.clip(sx, 0, width - 1)].astype(np.intp)
        pixels[~inside] = 0
        return lut[np.arange(channels), pixels]
    cx = (width - 1) / 2
    cy = (height - 1) / 2
    cos = math.cos(t.angle)
    sin = math.sin(t.angle)
    v = ys - t.dy - cy
    u = xs - t.dx - cx
    # The same double operations in the same order as augment.ts (numpy does not fuse multiply-adds).
    sx = cos * u + sin * v + cx
    sy = -sin * u + cos * v + cy
    if t.flip:
        sx = width - 1 - sx
    x0 = np.floor(sx)
    y0 = np.floor(sy)
    fx = sx - x0
    fy = sy - y0
    value = np.zeros((height, width, channels), dtype=np.float64)
    for k in range(4):
        px = (x0 + (k & 1)).astype(np.intp)
        py = (y0 + (k >> 1)).astype(np.intp)
        weight = (fx if k & 1 else 1 - fx) * (fy if k >> 1 else 1 - fy)
        inside = (px >= 0) & (px < width) & (py >= 0) & (py < height)
        pixel = src[np.clip(py, 0, height - 1), np.clip(px, 0, width - 1)].astype(np.float64)
        pixel[~inside] = 0
        # augment.ts skips zero weights; adding weight * pixel = 0 leaves the sum unchanged.
        value = value + weight[:, :, None] * pixel
    # Interpolating raw values then normalising equals interpolating normalised values (it is affine).
    lo = lut[:, 0].astype(np.float64)
    step = lut[:, 1].astype(np.float64) - lo
    return (lo + step * value).astype(np.float32)


def mix_rows(x: np.ndarray, lam: float, own: np.ndarray, other: np.ndarray) -> np.ndarray:
    """lambda x_own + (1 - lambda) x_other, row by row, in doubles rounded to float32 (augment.ts's order)."""
    x = x.astype(np.float64)
    return (lam * x[own] + (1 - lam) * x[other]).astype(np.float32)


def mixup(
    images: np.ndarray, labels: np.ndarray, alpha: float, random: Random
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """x_i <- lambda x_i + (1 - lambda) x_pi(i), same for the label rows, lambda ~ Beta(alpha, alpha) per batch.
    Returns the mixed images and labels, lambda and the pairing."""
    lam = beta(random, alpha, alpha)
    partner = permutation(images.shape[0], random)
    rows = np.arange(images.shape[0])
    return mix_rows(images, lam, rows, partner), mix_rows(labels, lam, rows, partner), lam, partner


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    out = np.zeros((len(labels), classes), dtype=np.float32)
    out[np.arange(len(labels)), np.asarray(labels, dtype=np.intp)] = 1
    return out


@dataclass(frozen=True)
class BatchAugmentation:
    """What a training batch's augmentation drew: a transform per image (None without geometric augmentation)
    and mixup's lambda and pairing (None without mixup). Drawn before any pixel is touched, so a process that
    prepares only some rows of the batch (data-parallel training) draws the whole batch's parameters, in the
    stream's order, and applies its rows' share: a row is augmented the same whichever process prepares it."""

    size: int
    transforms: list[ImageTransform] | None
    mix: tuple[float, np.ndarray] | None

    def sources(self, rows: np.ndarray) -> np.ndarray:
        """The batch positions whose pixels `rows` need (themselves and their mixup partners), sorted."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.mix is not None:
            rows = np.concatenate([rows, self.mix[1][rows].astype(np.int64)])
        return np.unique(rows)


def draw_batch_augmentation(size: int, augment: AugmentSpec | None, random: Random) -> BatchAugmentation:
    """The draws of augment.ts prepareImages for a batch of `size`: per image shift, flip and angle, then
    mixup's lambda ~ Beta(alpha, alpha) and its pairing, in that order."""
    geometric = augment is not None and (
        (augment.crop_padding or 0) > 0 or augment.flip or (augment.rotation_degrees or 0) > 0
    )
    transforms = [draw_transform(random, augment) for _ in range(size)] if geometric else None
    mix = None
    if augment is not None and (augment.mixup_alpha or 0) > 0:
        lam = beta(random, augment.mixup_alpha, augment.mixup_alpha)
        mix = (lam, permutation(size, random))
    return BatchAugmentation(size, transforms, mix)


def apply_batch_augmentation(
    plan: BatchAugmentation,
    pixels: np.ndarray,
    labels: np.ndarray,
    sources: np.ndarray,
    rows: np.ndarray,
    classes: int,
    lut: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows `rows` of the prepared batch (float32 NHWC images, label distributions) from the pixels and labels
    of batch positions `sources` (plan.sources(rows)): normalised, transformed per image, mixed up per batch."""
    at = {int(p): i for i, p in enumerate(sources)}
    if plan.transforms is not None:
        images = np.stack([transform_image(img, plan.transforms[int(p)], lut) for img, p in zip(pixels, sources)])
    else:
        images = normalise_batch(pixels, lut)
    targets = one_hot(labels, classes)
    own = np.asarray([at[int(r)] for r in rows], dtype=np.intp)
    if plan.mix is None:
        return images[own], targets[own]
    lam, partner = plan.mix
    other = np.asarray([at[int(partner[int(r)])] for r in rows], dtype=np.intp)
    return mix_rows(images, lam, own, other), mix_rows(targets, lam, own, other)


def prepare_images(
    pixels: np.ndarray,
    labels: np.ndarray,
    classes: int,
    lut: np.ndarray,
    augment: AugmentSpec | None,
    random: Random,
) -> tuple[np.ndarray, np.ndarray]:
    """A step's images (float32 NHWC) and label distributions: normalised, then (when asked) cropped, flipped
    and rotated per image and mixed up per batch (augment.ts prepareImages)."""
    plan = draw_batch_augmentation(len(pixels), augment, random)
    everything = np.arange(len(pixels))
    return apply_batch_augmentation(plan, pixels, labels, everything, everything, classes, lut)
