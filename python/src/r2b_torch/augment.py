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


def mixup(
    images: np.ndarray, labels: np.ndarray, alpha: float, random: Random
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """x_i <- lambda x_i + (1 - lambda) x_pi(i), same for the label rows, lambda ~ Beta(alpha, alpha) per batch.
    Returns the mixed images and labels, lambda and the pairing."""
    lam = beta(random, alpha, alpha)
    partner = permutation(images.shape[0], random)
    x = images.astype(np.float64)
    y = labels.astype(np.float64)
    mixed_images = (lam * x + (1 - lam) * x[partner]).astype(np.float32)
    mixed_labels = (lam * y + (1 - lam) * y[partner]).astype(np.float32)
    return mixed_images, mixed_labels, lam, partner


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    out = np.zeros((len(labels), classes), dtype=np.float32)
    out[np.arange(len(labels)), np.asarray(labels, dtype=np.intp)] = 1
    return out


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
    targets = one_hot(labels, classes)
    geometric = augment is not None and (
        (augment.crop_padding or 0) > 0 or augment.flip or (augment.rotation_degrees or 0) > 0
    )
    if geometric:
        images = np.stack([transform_image(img, draw_transform(random, augment), lut) for img in pixels])
    else:
        images = normalise_batch(pixels, lut)
    if augment is not None and (augment.mixup_alpha or 0) > 0:
        images, targets, _, _ = mixup(images, targets, augment.mixup_alpha, random)
    return images, targets
