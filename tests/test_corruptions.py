"""Corruptions: severity 0 is the identity, the distance from the clean image grows with
severity, the same image, corruption, severity and seed give the same bytes (in any batch), and
bad names or severities are refused."""

from __future__ import annotations

import numpy as np
import pytest

from transfusion.data.corruptions import CORRUPTIONS, MODALITIES, PARAMETERS, corrupt


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Smooth images with structure (blur and pixelation must have something to act on)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:48] / 48.0
    base = 0.5 + 0.3 * np.sin(6 * xx + 3 * yy)[None, None] + 0.1 * rng.normal(size=(6, 3, 48, 48))
    return np.clip(base * 255, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("modality", MODALITIES)
@pytest.mark.parametrize("name", CORRUPTIONS)
def test_identity_at_zero_and_monotone_in_severity(images, name, modality):
    assert np.array_equal(corrupt(images, name, 0, modality=modality), images)
    dist = [np.abs(corrupt(images, name, s, modality=modality, seed=1).astype(float) - images).mean()
            for s in range(6)]
    assert dist[0] == 0 and all(b > a for a, b in zip(dist, dist[1:])), dist


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_same_image_and_seed_give_the_same_bytes(images, name):
    a = corrupt(images, name, 3, seed=7)
    assert a.dtype == np.uint8 and a.shape == images.shape
    assert corrupt(images, name, 3, seed=7).tobytes() == a.tobytes()
    # a chunk of the split, told where it starts, gets what the whole split got
    assert np.array_equal(corrupt(images[2:4], name, 3, seed=7, start=2), a[2:4])
    if name in ("gaussian_noise", "speckle_noise", "motion_blur"):  # the random ones differ by seed
        assert not np.array_equal(corrupt(images, name, 3, seed=8), a)


def test_parameters_are_medmnist_c_tables():
    assert PARAMETERS["fundus"]["gaussian_noise"] == (0.04, 0.08, 0.12, 0.16, 0.20)
    assert PARAMETERS["xray"]["jpeg"] == (50, 30, 15, 10, 7)
    assert all(len(v) == 5 for m in MODALITIES for v in PARAMETERS[m].values())
    assert set(PARAMETERS["fundus"]) == set(PARAMETERS["xray"]) == set(CORRUPTIONS)


@pytest.mark.parametrize("args,message", [
    (("fog", 1), "unknown corruption 'fog'"),
    (("jpeg", 6), "severity must be a whole number 0..5"),
    (("jpeg", 1, "ct"), "unknown corruption modality 'ct'"),
])
def test_bad_corruptions_are_named(images, args, message):
    name, severity, *modality = args
    with pytest.raises(ValueError, match=message):
        corrupt(images, name, severity, modality=modality[0] if modality else "fundus")
