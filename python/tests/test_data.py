"""The seeded streams, schedules and the dataset reader reproduce the tfjs side bit for bit: the conformance
dump holds the generators' values (rng.json) and the DatasetReader's batches over a store written by the
project's DatasetWriter (data/), plain, cropped and flipped, and with rotation and mixup."""

from __future__ import annotations

import json

import numpy as np
import pytest

from r2b_torch import rng
from r2b_torch.config import AugmentSpec, ScheduleSpec, from_json
from r2b_torch.data import DatasetReader, open_dataset, write_dataset
from r2b_torch.schedule import schedule_multiplier
from support import read_bundle


@pytest.fixture(scope="module")
def values(dump):
    return json.loads((dump / "rng.json").read_text())


def test_generators_match_random_ts(values):
    stream = rng.mulberry32(12345)
    assert [stream() for _ in range(20)] == values["mulberry32"]
    assert [
        rng.mix_seed(0),
        rng.mix_seed(1, 2),
        rng.mix_seed(11, 1),
        rng.mix_seed(5, 0, 1),
        rng.mix_seed(5, 3, 2),
        rng.mix_seed(4294967295, 7),
    ] == values["mixSeed"]
    assert rng.permutation(17, rng.mulberry32(3)).tolist() == values["permutation"]
    r = rng.mulberry32(8)
    assert [rng.normal(r) for _ in range(10)] == pytest.approx(values["normal"], rel=1e-15, abs=0)
    for a, expected in zip((0.2, 0.4, 1.5), values["beta"]):
        r = rng.mulberry32(9)
        assert [rng.beta(r, a, a) for _ in range(10)] == pytest.approx(expected, rel=1e-12, abs=0)


def test_variable_seeds_match_param_store(values):
    for entry in values["seedFor"]:
        assert rng.seed_for(7, entry["name"]) == entry["seed"]


def test_schedules_match(values):
    for case in values["schedules"]:
        spec = from_json(ScheduleSpec, case["spec"])
        got = [schedule_multiplier(spec, e, case["total"]) for e in case["epochs"]]
        assert got == pytest.approx(case["values"], rel=1e-14, abs=1e-15)


@pytest.fixture(scope="module")
def reader(dump) -> DatasetReader:
    return open_dataset("conformance", dump / "data" / "home")


@pytest.fixture(scope="module")
def batches(dump):
    return read_bundle(dump / "data", "batches")


SETTINGS = {
    "plain": None,
    "cropflip": AugmentSpec(crop_padding=2, flip=True),
    "full": AugmentSpec(crop_padding=2, flip=True, rotation_degrees=15, mixup_alpha=0.4),
}


@pytest.mark.parametrize("setting", SETTINGS)
def test_training_batches_are_bit_identical(reader, batches, setting):
    assert reader.shape == (9, 11, 3) and reader.train_size == 37 and reader.classes == 5
    for epoch in (0, 1):
        ours = list(reader.train_batches(batch_size=8, epoch=epoch, seed=5, augment=SETTINGS[setting]))
        assert len(ours) == 4  # 37 images, whole batches of 8
        for i, batch in enumerate(ours):
            key = f"train/{setting}/e{epoch}/b{i}"
            assert np.array_equal(batch.images, batches[f"{key}/images"]), key
            assert np.array_equal(batch.labels, batches[f"{key}/labels"]), key


CROP_SETTINGS = {
    "rrc": AugmentSpec(resized_crop_min_area=0.08, flip=True, color_jitter=0.4),
    "jitter": AugmentSpec(color_jitter=0.4, mixup_alpha=0.4),
    "centre": AugmentSpec(flip=True),
}


@pytest.mark.parametrize("setting", CROP_SETTINGS)
def test_cropped_training_batches_are_bit_identical(dump, batches, setting):
    """A store larger than the input (7 of 9 x 11): the resized crop, colour jitter and the centred window."""
    reader = open_dataset("conformance", dump / "data" / "home", input_size=7)
    assert reader.input_shape == (7, 7, 3)
    for epoch in (0, 1):
        ours = list(reader.train_batches(batch_size=8, epoch=epoch, seed=5, augment=CROP_SETTINGS[setting]))
        assert len(ours) == 4
        for i, batch in enumerate(ours):
            key = f"crop/{setting}/e{epoch}/b{i}"
            assert batch.images.shape == (8, 7, 7, 3)
            assert np.array_equal(batch.images, batches[f"{key}/images"]), key
            assert np.array_equal(batch.labels, batches[f"{key}/labels"]), key


def test_cropped_evaluation_takes_the_centred_window(dump, batches, reader):
    cropped = open_dataset("conformance", dump / "data" / "home", input_size=7)
    for i, batch in enumerate(cropped.test_batches(batch_size=5, limit=11)):
        assert np.array_equal(batch.images, batches[f"crop/test/b{i}/images"])
    probe = cropped.test_images([3, 0, 12])
    assert np.array_equal(probe.images, batches["crop/probe/images"])
    # The centred window of the full-size image: rows 1..8 of 9, columns 2..9 of 11.
    full = reader.test_images([3, 0, 12]).images
    assert np.array_equal(probe.images, full[:, 1:8, 2:9])
    with pytest.raises(ValueError, match="import it again with --size 10 or more"):
        open_dataset("conformance", dump / "data" / "home", input_size=10)


def test_limits_partial_batches_and_test_order(reader, batches):
    ours = list(reader.train_batches(batch_size=8, epoch=2, seed=5, limit=2, drop_last=False))
    assert [b.images.shape[0] for b in ours] == [8, 8]
    for i, batch in enumerate(ours):
        assert np.array_equal(batch.images, batches[f"train/limit/e2/b{i}/images"])
    tests = list(reader.test_batches(batch_size=5, limit=11))
    assert [b.images.shape[0] for b in tests] == [5, 5, 1]
    for i, batch in enumerate(tests):
        assert np.array_equal(batch.images, batches[f"test/b{i}/images"])
        assert np.array_equal(batch.labels, batches[f"test/b{i}/labels"])
    probe = reader.test_images([3, 0, 12])
    assert np.array_equal(probe.images, batches["probe/images"])
    assert np.array_equal(probe.labels, batches["probe/labels"])


def test_written_store_reads_back(tmp_path, reader):
    """write_dataset produces the store layout and the statistics DatasetWriter computes."""
    train_pixels, train_labels = reader.read_raw("train", np.arange(reader.train_size))
    test_pixels, test_labels = reader.read_raw("test", np.arange(reader.test_size))
    manifest = write_dataset(tmp_path, "copy", (train_pixels, train_labels), (test_pixels, test_labels), list("abcde"))
    assert manifest["stats"]["mean"] == pytest.approx(reader.manifest["stats"]["mean"], rel=1e-12)
    assert manifest["stats"]["std"] == pytest.approx(reader.manifest["stats"]["std"], rel=1e-12)
    assert manifest["classCounts"] == reader.manifest["classCounts"]
    copy = open_dataset("copy", tmp_path)
    for a, b in zip(copy.train_batches(8, 0, 5, SETTINGS["full"]), reader.train_batches(8, 0, 5, SETTINGS["full"])):
        assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    with pytest.raises(FileExistsError):
        write_dataset(tmp_path, "copy", (train_pixels, train_labels), (test_pixels, test_labels), list("abcde"))
