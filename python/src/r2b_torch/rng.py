"""Seeded random streams, bit-for-bit the generators of src/shared/random.ts.

Everything the tfjs side replays exactly (shuffling, augmentation draws, mixup) draws from these, so a PyTorch
run given the same seed visits the same images in the same order with the same crops, flips, angles and mixup
pairings. JavaScript's 32-bit integer operations are reproduced on Python ints kept in [0, 2**32): Math.imul is
a product mod 2**32, `>>>` a right shift of the unsigned value, and `^`/`|` act on the same bits whichever sign
convention holds them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

MASK32 = 0xFFFFFFFF

Random = Callable[[], float]
"""A function returning uniform floats in [0, 1)."""


def imul(a: int, b: int) -> int:
    """Math.imul on unsigned 32-bit values: the low 32 bits of the product."""
    return (a * b) & MASK32


def mix_seed(*parts: int) -> int:
    """mixSeed: several integers into one 32-bit seed, so (seed, epoch, stream) give independent generators."""
    h = 0x811C9DC5
    for part in parts:
        h = imul(h ^ (int(part) & MASK32), 0x01000193)
        h ^= h >> 13
        h = imul(h, 0x5BD1E995)
        h ^= h >> 15
    return h & MASK32


class Mulberry32:
    """mulberry32: 32-bit state; each call returns the next uniform float in [0, 1)."""

    def __init__(self, seed: int) -> None:
        self.state = int(seed) & MASK32

    def __call__(self) -> float:
        self.state = (self.state + 0x6D2B79F5) & MASK32
        t = self.state
        t = imul(t ^ (t >> 15), t | 1)
        # JS: t ^= t + imul(...): the sum is taken mod 2**32 by the xor's ToInt32.
        t ^= (t + imul(t ^ (t >> 7), t | 61)) & MASK32
        return ((t ^ (t >> 14)) & MASK32) / 4294967296


def mulberry32(seed: int) -> Mulberry32:
    return Mulberry32(seed)


def random_int(random: Random, n: int) -> int:
    """An integer uniform in [0, n): floor(random() * n), in doubles as in JS."""
    return math.floor(random() * n)


def permutation(n: int, random: Random) -> np.ndarray:
    """A Fisher-Yates permutation of 0..n-1 (uint32), drawing exactly as shuffleInPlace does."""
    out = list(range(n))
    for i in range(n - 1, 0, -1):
        j = random_int(random, i + 1)
        out[i], out[j] = out[j], out[i]
    return np.asarray(out, dtype=np.uint32)


def normal(random: Random) -> float:
    """A standard normal sample (Box-Muller), as random.ts draws it."""
    u = 1 - random()
    v = random()
    return math.sqrt(-2 * math.log(u)) * math.cos(2 * math.pi * v)


def gamma(random: Random, shape: float) -> float:
    """A Gamma(shape, 1) sample (Marsaglia-Tsang; shape < 1 via the boost u^(1/shape))."""
    if shape < 1:
        return gamma(random, shape + 1) * math.pow(1 - random(), 1 / shape)
    d = shape - 1 / 3
    c = 1 / math.sqrt(9 * d)
    while True:
        while True:
            x = normal(random)
            v = 1 + c * x
            if v > 0:
                break
        v = v * v * v
        u = 1 - random()
        if math.log(u) < 0.5 * x * x + d - d * v + d * math.log(v):
            return d * v


def beta(random: Random, a: float, b: float) -> float:
    """A Beta(a, b) sample: mixup's mixing coefficient."""
    x = gamma(random, a)
    y = gamma(random, b)
    return 0.5 if x + y == 0 else x / (x + y)


def hash_name(name: str) -> int:
    """FNV-1a over UTF-16 code units (names are ASCII), as layers.ts hashes variable names."""
    h = 0x811C9DC5
    data = name.encode("utf-16-le")
    for i in range(0, len(data), 2):
        h ^= data[i] | (data[i + 1] << 8)
        h = imul(h, 0x01000193)
    return h & MASK32


def seed_for(model_seed: int, name: str) -> int:
    """ParamStore.seedFor: a per-variable seed from the model seed and the variable's local name."""
    return (hash_name(name) ^ imul((int(model_seed) + 1) & MASK32, 0x9E3779B1)) & MASK32
