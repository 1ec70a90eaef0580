"""Rebuild the bundled samples from the development data (../shared/data) and scikit-image.

Run from the project root: ``python sample_data/build.py``. Each file is a zlib-compressed
tif; credits and licences are in ``CREDITS.md``.
"""

from pathlib import Path

import numpy as np
import tifffile
from skimage import data as skdata

HERE = Path(__file__).resolve().parent
DEV = HERE.parent.parent / "shared" / "data"


def _write(name, array, **metadata):
    tifffile.imwrite(HERE / f"{name}.tif", array, compression="zlib", metadata=metadata or None)


def main():
    nuclei = "0a849e0eb15faa8a"  # 256 x 256, 50 nuclei, DSB2018 stage-1 test (CC0)
    _write("nuclei2d", tifffile.imread(DEV / "nuclei2d_dsb2018" / "images" / f"{nuclei}.tif"))
    _write("nuclei2d_truth", tifffile.imread(DEV / "nuclei2d_dsb2018" / "masks" / f"{nuclei}.tif"))

    # brain1: crop (y, x) to the hemisphere holding the tumour; every slice kept
    path = DEV / "mri3d_pyradiomics" / "images" / "brain1.tif"
    with tifffile.TiffFile(path) as tif:
        spacing = [float(s) for s in tif.shaped_metadata[0]["spacing_zyx"]]
    crop = (slice(None), slice(40, 200), slice(96, 256))
    _write("mri3d", tifffile.imread(path)[crop], spacing_zyx=spacing)
    truth = tifffile.imread(DEV / "mri3d_pyradiomics" / "masks" / "brain1.tif")
    _write("mri3d_truth", truth[crop].astype(np.uint8), spacing_zyx=spacing)

    _write("rgb_photo", skdata.coffee()[::2, ::2])  # 200 x 300 x 3, CC0


if __name__ == "__main__":
    main()
