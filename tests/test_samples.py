"""The bundled samples load with consistent shapes, starts, credits, and segment sensibly."""

import numpy as np
import pytest

import napari_heatseg as hs
from napari_heatseg.samples import SAMPLE_DIR, SAMPLES, ball_start, box_start, load_sample


def test_sample_folder_is_small():
    total = sum(p.stat().st_size for p in SAMPLE_DIR.iterdir() if p.is_file())
    assert total < 3_000_000, f"sample_data/ is {total / 1e6:.1f} MB; keep it under 3 MB"


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_contract(name):
    sample = load_sample(name)
    image, start = sample["image"], sample["start"]
    spatial = image.shape if sample["channel_axis"] is None else np.delete(image.shape, sample["channel_axis"])
    assert start.shape == tuple(spatial)
    assert start.dtype == np.uint8 and start.any()
    assert sample["scope"] in ("inside", "object", "all")
    assert sample["credit"]
    if sample["truth"] is not None:
        assert sample["truth"].shape == start.shape
        # the standard start lies inside the ground truth
        assert np.all(sample["truth"][start > 0] > 0)
    if sample["spacing"] is not None:
        assert len(sample["spacing"]) == start.ndim


def test_mri_sample_has_physical_spacing():
    sample = load_sample("mri3d")
    assert sample["image"].ndim == 3
    assert sample["spacing"][0] == pytest.approx(6.5, abs=0.01)
    assert sample["spacing"][1] == pytest.approx(0.78125, abs=1e-4)


def test_unknown_sample_names_the_choices():
    with pytest.raises(ValueError, match="nuclei2d"):
        load_sample("nope")


def test_ball_start_radius_is_half_the_depth():
    yy, xx = np.mgrid[:64, :64]
    disk = ((yy - 32) ** 2 + (xx - 30) ** 2 < 20**2).astype(np.uint8)
    start = ball_start(disk, n=1)
    area = start.sum()
    assert abs(area - np.pi * 10**2) < 0.1 * np.pi * 10**2  # radius 10 = half of depth 20
    # anisotropic spacing: half the depth in physical units
    start_aniso = ball_start(disk, n=1, spacing=(2.0, 1.0))
    assert start_aniso.sum() < area


def test_box_start():
    start = box_start((10, 12), ((2, 5), (3, 9)))
    assert start.sum() == 18 and start[2, 3] == 1 and start[5, 3] == 0


def test_nuclei_sample_segments_many_nuclei():
    sample = load_sample("nuclei2d")
    labels = hs.segment(sample["image"], sample["start"], scope=sample["scope"])
    truth = sample["truth"] > 0
    iou = np.logical_and(labels > 0, truth).sum() / np.logical_or(labels > 0, truth).sum()
    # three marked nuclei out of 50; "all" must find most of the others (measured 0.67-0.80)
    assert iou > 0.5


def test_mri_sample_tumour_from_its_ball():
    """A 3D accuracy floor that runs on any clone (the bundled brain1 crop; measured 0.56)."""
    sample = load_sample("mri3d")
    labels = hs.segment(sample["image"], sample["start"], scope=sample["scope"], spacing=sample["spacing"])
    truth = sample["truth"] > 0
    iou = np.logical_and(labels > 0, truth).sum() / np.logical_or(labels > 0, truth).sum()
    assert iou > 0.5
    assert (labels > 0).sum() < 3 * truth.sum()  # no leak


def test_nuclei_sample_instances():
    """'Mark a few, find them all', one id per nucleus, on any clone (measured 42 ids for 50 nuclei)."""
    sample = load_sample("nuclei2d")
    objects = hs.segment(sample["image"], sample["start"], scope="all", instances=True)
    found = len(np.unique(objects)) - 1
    assert objects.max() == found and 35 <= found <= 65
