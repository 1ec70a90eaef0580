"""napari sample-data contributions: each sample opens as an image and a start ready to run.

Thin wrappers around :func:`napari_heatseg.samples.load_sample` (which works without
napari); imports happen inside the functions so that reading the manifest stays cheap.
"""

__all__ = ["mri3d", "nuclei2d", "rgb_photo", "sample_layers"]


def sample_layers(name):
    """napari LayerData tuples: the image, (hidden) the ground truth if any, and the start.

    All share the sample's voxel spacing as ``scale``; the start layer's metadata
    carries the scope the sample is meant for (the widget picks it up). The ground
    truth is there for the widget's "compare with a reference" panel: its metadata
    ``heatseg_reference`` makes the widget choose it as the reference. The start comes
    last, so napari makes it the active layer: painting goes into the marks, never into
    the hidden ground truth.
    """
    from napari_heatseg.samples import load_sample

    sample = load_sample(name)
    image, start = sample["image"], sample["start"]
    spacing = sample.get("spacing")
    scale = tuple(spacing) if spacing is not None else None
    credit = sample.get("credit", "")
    image_kwargs = {"name": name, "metadata": {"credit": credit}}
    if sample.get("channel_axis") is not None:
        image_kwargs["rgb"] = True  # the samples keep colour on the last axis (channel_axis=-1)
    start_kwargs = {"name": f"{name} start", "metadata": {"heatseg_scope": sample.get("scope", "object")}}
    if scale is not None:
        image_kwargs["scale"] = start_kwargs["scale"] = scale
    layers = [(image, image_kwargs, "image")]
    if sample.get("truth") is not None:
        truth_kwargs = {"name": f"{name} ground truth", "visible": False, "metadata": {"heatseg_reference": True}}
        if scale is not None:
            truth_kwargs["scale"] = scale
        layers.append((sample["truth"], truth_kwargs, "labels"))
    layers.append((start, start_kwargs, "labels"))
    return layers


def nuclei2d():
    """2D fluorescence nuclei with marks inside a few nuclei (scope 'all')."""
    return sample_layers("nuclei2d")


def mri3d():
    """3D brain MRI (anisotropic voxels) with a ball inside the tumour (scope 'object')."""
    return sample_layers("mri3d")


def rgb_photo():
    """RGB photograph with a filled box around the object (scope 'inside')."""
    return sample_layers("rgb_photo")
