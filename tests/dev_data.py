"""The development data beside the project (../shared/data), for tests that use it.

A module of its own (not ``conftest``): ``tests/widgets/conftest.py`` shadows the name
``conftest`` on ``sys.path``, so ``from conftest import ...`` would find the wrong file.
"""

from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def _read(path):
    tifffile = pytest.importorskip("tifffile")
    return tifffile.imread(path)


def load_item(dataset, item):
    """(image, mask, spacing) of one development item, or skip if the data is absent."""
    image_path = DATA / dataset / "images" / f"{item}.tif"
    if not image_path.exists():
        pytest.skip(f"development data {dataset}/{item} not found beside the project ({DATA})")
    import tifffile

    with tifffile.TiffFile(image_path) as tif:
        meta = tif.shaped_metadata[0] if tif.shaped_metadata else {}
    spacing = meta.get("spacing_zyx") if isinstance(meta, dict) else None
    mask = _read(DATA / dataset / "masks" / f"{item}.tif")
    return _read(image_path), mask, (tuple(float(s) for s in spacing) if spacing else None)
