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


@dataclass(frozen=True)
class Normalisation:
    """A dataset's per-channel mean and std of pixel/255, and the table of their uint8 values (augment.ts)."""

    mean: np.ndarray
    std: np.ndarray
    lut: np.ndarray


def normalisation(mean: list[float], std: list[float]) -> Normalisation:
    return Normalisation(
        np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64), normalisation_table(mean, std)
    )


def centre_offset(stored: int, out: int) -> int:
    """Where the centred window of `out` pixels starts in a side of `stored` pixels (larq zoo's rounding)."""
    return (stored - out + 1) >> 1


def centre_crop(pixels: np.ndarray, out: int) -> np.ndarray:
    """The centred out x out window of each uint8 image [N, H, W, C]: evaluation's crop of a larger store."""
    _, h, w, _ = pixels.shape
    if out == h and out == w:
        return pixels
    y0, x0 = centre_offset(h, out), centre_offset(w, out)
    return pixels[:, y0 : y0 + out, x0 : x0 + out]


# ln(4/3): aspect ratios of the resized crop are e^u for u uniform in +-this (the literal augment.ts uses).
LOG_RATIO = 0.28768207245178085


@dataclass(frozen=True)
class CropTransform:
    """One image's crop-path augmentation: the box (x, y, width, height) of the stored image resized to the
    input, flip, and the brightness, contrast and saturation factors (None without jitter)."""

    box: tuple[int, int, int, int]
    flip: bool
    jitter: tuple[float, float, float] | None


def draw_crop_transform(random: Random, height: int, width: int, out: int, options: AugmentSpec) -> CropTransform:
    """augment.ts drawCropTransform: up to 10 tries of an area fraction and a log-uniform aspect ratio, else the
    centred out x out window; then the flip and the jitter factors, in that order."""
    min_area = options.resized_crop_min_area or 0
    box = None
    attempt = 0
    while min_area > 0 and attempt < 10 and box is None:
        target = height * width * (min_area + (1 - min_area) * random())
        ratio = math.exp(-LOG_RATIO + 2 * LOG_RATIO * random())
        w = math.floor(math.sqrt(target * ratio) + 0.5)
        h = math.floor(math.sqrt(target / ratio) + 0.5)
        if 1 <= w <= width and 1 <= h <= height:
            y = random_int(random, height - h + 1)
            x = random_int(random, width - w + 1)
            box = (x, y, w, h)
        attempt += 1
    if box is None:
        box = (centre_offset(width, out), centre_offset(height, out), out, out)
    flip = random() < 0.5 if options.flip else False
    j = options.color_jitter or 0
    jitter = None
    if j > 0:
        jitter = tuple(1 - j + 2 * j * random() for _ in range(3))
    return CropTransform(box, flip, jitter)


def _taps(start: int, length: int, size: int, out: int, flip: bool):
    """Bilinear taps and weights of the `out` output positions along one side, edge-clamped (augment.ts taps)."""
    at = np.arange(out, dtype=np.float64)
    if flip:
        at = at[::-1]
    scale = length / out
    s = np.minimum(np.maximum(start + (at + 0.5) * scale - 0.5, 0), size - 1)
    lo = np.floor(s).astype(np.intp)
    return lo, np.minimum(lo + 1, size - 1), s - lo


def _grey(raw: np.ndarray) -> np.ndarray:
    return 0.299 * raw[..., 0] + 0.587 * raw[..., 1] + 0.114 * raw[..., 2]


def _jitter_colours(raw: np.ndarray, factors: tuple[float, float, float]) -> np.ndarray:
    """augment.ts jitterColours: brightness, contrast (about the mean grey, summed in pixel order: cumsum is
    sequential, as the loop there), saturation (three channels only), each clamped to [0, 255]."""
    b, k, s = factors
    raw = np.minimum(255, np.maximum(0, raw * b))
    grey = _grey(raw) if raw.shape[2] == 3 else raw[..., 0]
    mean = np.cumsum(grey.ravel())[-1] / grey.size
    raw = np.minimum(255, np.maximum(0, (raw - mean) * k + mean))
    if raw.shape[2] != 3:
        return raw
    g = _grey(raw)[..., None]
    return np.minimum(255, np.maximum(0, (raw - g) * s + g))


def crop_image(src: np.ndarray, t: CropTransform, out: int, norm: Normalisation) -> np.ndarray:
    """augment.ts cropImage: the box of the stored uint8 image resized bilinearly to out x out (flipped when
    drawn), colour-jittered, normalised; doubles until the normalisation rounds to float32 once."""
    height, width, _ = src.shape
    x, y, w, h = t.box
    x0, x1, fx = _taps(x, w, width, out, t.flip)
    y0, y1, fy = _taps(y, h, height, out, False)
    pixels = src.astype(np.float64)
    rows0, rows1 = pixels[y0], pixels[y1]
    fx = fx[None, :, None]
    top = (1 - fx) * rows0[:, x0] + fx * rows0[:, x1]
    bottom = (1 - fx) * rows1[:, x0] + fx * rows1[:, x1]
    fy = fy[:, None, None]
    raw = (1 - fy) * top + fy * bottom
    if t.jitter is not None:
        raw = _jitter_colours(raw, t.jitter)
    return ((raw / 255 - norm.mean) / norm.std).astype(np.float32)


def crop_path(augment: AugmentSpec | None) -> bool:
    """Whether an augmentation takes the crop path (resized crop or colour jitter) rather than the shift path."""
    return augment is not None and ((augment.resized_crop_min_area or 0) > 0 or (augment.color_jitter or 0) > 0)


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
    """What a training batch's augmentation drew: a transform per image (None without geometric augmentation;
    CropTransforms on the crop path) and mixup's lambda and pairing (None without mixup). Drawn before any
    pixel is touched, so a process that prepares only some rows of the batch (data-parallel training) draws
    the whole batch's parameters, in the stream's order, and applies its rows' share: a row is augmented the
    same whichever process prepares it."""

    size: int
    transforms: list[ImageTransform] | list[CropTransform] | None
    mix: tuple[float, np.ndarray] | None
    crop: bool = False
    out: int | None = None
    """The input's side when it differs from the store's (augment.ts prepareImages `out`)."""

    def sources(self, rows: np.ndarray) -> np.ndarray:
        """The batch positions whose pixels `rows` need (themselves and their mixup partners), sorted."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.mix is not None:
            rows = np.concatenate([rows, self.mix[1][rows].astype(np.int64)])
        return np.unique(rows)


def draw_batch_augmentation(
    size: int,
    augment: AugmentSpec | None,
    random: Random,
    stored: tuple[int, int] | None = None,
    out: int | None = None,
) -> BatchAugmentation:
    """The draws of augment.ts prepareImages for a batch of `size` images stored `stored` (height, width): per
    image the crop path's box, flip and jitter, or the shift path's shift, flip and angle; then mixup's
    lambda ~ Beta(alpha, alpha) and its pairing, in that order."""
    crop = crop_path(augment)
    if crop and ((augment.crop_padding or 0) > 0 or (augment.rotation_degrees or 0) > 0):
        raise ValueError("the resized crop and colour jitter go with flips only, not shifts or rotation")
    geometric = augment is not None and (
        (augment.crop_padding or 0) > 0 or augment.flip or (augment.rotation_degrees or 0) > 0
    )
    transforms = None
    if crop:
        if stored is None:
            raise ValueError("the crop path needs the stored image size")
        height, width = stored
        side = out if out is not None else height
        transforms = [draw_crop_transform(random, height, width, side, augment) for _ in range(size)]
    elif geometric:
        transforms = [draw_transform(random, augment) for _ in range(size)]
    mix = None
    if augment is not None and (augment.mixup_alpha or 0) > 0:
        lam = beta(random, augment.mixup_alpha, augment.mixup_alpha)
        mix = (lam, permutation(size, random))
    return BatchAugmentation(size, transforms, mix, crop, out)


def apply_batch_augmentation(
    plan: BatchAugmentation,
    pixels: np.ndarray,
    labels: np.ndarray,
    sources: np.ndarray,
    rows: np.ndarray,
    classes: int,
    norm: Normalisation,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows `rows` of the prepared batch (float32 NHWC images, label distributions) from the pixels and labels
    of batch positions `sources` (plan.sources(rows)): cropped or shifted per image, normalised, mixed up."""
    at = {int(p): i for i, p in enumerate(sources)}
    if plan.crop:
        side = plan.out if plan.out is not None else pixels.shape[1]
        images = np.stack([crop_image(img, plan.transforms[int(p)], side, norm) for img, p in zip(pixels, sources)])
    else:
        if plan.out is not None:
            pixels = centre_crop(pixels, plan.out)
        if plan.transforms is not None:
            images = np.stack(
                [transform_image(img, plan.transforms[int(p)], norm.lut) for img, p in zip(pixels, sources)]
            )
        else:
            images = normalise_batch(pixels, norm.lut)
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
    norm: Normalisation,
    augment: AugmentSpec | None,
    random: Random,
    out: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A step's images (float32 NHWC) and label distributions, as augment.ts prepareImages."""
    plan = draw_batch_augmentation(len(pixels), augment, random, pixels.shape[1:3], out)
    everything = np.arange(len(pixels))
    return apply_batch_augmentation(plan, pixels, labels, everything, everything, classes, norm)
