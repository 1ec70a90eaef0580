"""Classical interactive segmentation peers, fed the simulated clicks of ``benchmarks/noc.py``.

Each peer is a class built once per image (the per-image set-up an interactive tool
caches: normalisation, edge weights) and called once per interaction::

    predict = GraphCut(item)
    labels = predict(positive=..., negative=..., box=None, previous=None)

``positive``/``negative`` are the clicked disks (boolean, spatial shape), ``box`` the
filled bounding box of the box protocol (None in the clicks protocol), ``previous``
the last result (None before the first). They return uint8 labels (1 = object).

- :class:`GrabCut`: OpenCV ``grabCut`` (Rother et al. 2004), 2D only (grey images as
  three equal channels). Clicks protocol: clicks as ``GC_FGD``/``GC_BGD``, the rest
  ``GC_PR_BGD``. Box protocol: ``GC_INIT_WITH_RECT`` (:func:`benchmarks.common.run_grabcut`),
  then the previous mask (``GC_PR_FGD``/``GC_PR_BGD`` inside the box, ``GC_BGD``
  outside) with the clicks fixed, ``GC_INIT_WITH_MASK``; 5 iterations each.
- :class:`RandomWalker`: :func:`skimage.segmentation.random_walker` (Grady 2006), clicks
  as seeds; background seeds are the negative clicks and, for a box, everything outside
  it (its deep core, at least half the box's depth, is the object seed, as in the
  project's own ``random_walker`` baseline), and the image border while there is no
  other background seed.
- :class:`GraphCut`: a Boykov-Jolly (2001) graph cut solved with PyMaxflow.

The graph cut minimises ``E(L) = sum_p D_p(L_p) + sum_{p~q} w_pq [L_p != L_q]`` over the
4- (2D) or 6-neighbourhood (3D), with the contrast-sensitive weight of GrabCut

    w_pq = gamma * exp(-beta ||f_p - f_q||^2) / dist(p, q),
    beta = 1 / (2 <||f_p - f_q||^2>)   (mean over all neighbour pairs of the image),

``gamma = 50`` and ``dist`` the neighbour distance in finest voxels (spacing). The
unaries are ``D_p(l) = -log P(f_p | l)`` from smoothed histograms of the features (16
bins per channel for colour, 64 for grey), learned from the marks: the object from the
positive clicks (and the box's inside), the background from the negative clicks and
the image border (or, for a box, everything outside it). Clicked voxels (and the
outside of a box) are hard constraints.

Features are the image's channels, each mapped robustly to [0, 1] (0.5th/99.5th
percentiles), as in the project's own input handling.

References
----------
.. [1] Y. Boykov, M.-P. Jolly, "Interactive graph cuts for optimal boundary & region
       segmentation of objects in N-D images", ICCV 2001. :DOI:`10.1109/ICCV.2001.937505`
.. [2] C. Rother, V. Kolmogorov, A. Blake, "GrabCut: interactive foreground extraction
       using iterated graph cuts", SIGGRAPH 2004. :DOI:`10.1145/1015706.1015720`
.. [3] L. Grady, "Random walks for image segmentation", IEEE TPAMI 28(11), 2006.
       :DOI:`10.1109/TPAMI.2006.233`
"""

import importlib.util

import numpy as np
from scipy import ndimage as ndi

from benchmarks import common

GAMMA = 50.0  # GrabCut's smoothness weight
BINS = {1: 64, 3: 16}  # histogram bins per channel, by channel count (others: 16)
UNIFORM_SHARE = 0.01  # share of a histogram's mass spread over every bin
ITERATIONS = 5  # GrabCut iterations per call
HARD = 1e9  # capacity of a hard constraint


def features(item):
    """The image as channels-last float32, each channel robustly mapped to [0, 1]."""
    image = np.asarray(item.image, np.float32)
    image = np.moveaxis(image, item.channel_axis, -1) if item.colour else image[..., None]
    low, high = np.percentile(image.reshape(-1, image.shape[-1]), [0.5, 99.5], axis=0)
    return np.clip((image - low) / np.maximum(high - low, 1e-12), 0, 1).astype(np.float32)


def border(shape):
    """The outermost layer of voxels of an array of ``shape``."""
    edge = np.ones(shape, bool)
    edge[tuple(slice(1, -1) for _ in shape)] = False
    return edge


def box_core(box, spacing):
    """The deep part of a filled box: at least half its maximal (physical) depth."""
    depth = ndi.distance_transform_edt(box, sampling=spacing)
    return box & (depth >= 0.5 * depth.max())


def _relative_spacing(item):
    spacing = item.spacing or (1.0,) * item.ndim
    return tuple(h / min(spacing) for h in spacing)


class GrabCut:
    """OpenCV GrabCut on 2D images (see the module docstring)."""

    def __init__(self, item):
        if item.ndim != 2:
            raise ValueError("GrabCut takes 2D images only.")
        if item.colour and item.image.shape[-1] == 3 and item.image.dtype == np.uint8:
            self.rgb = np.asarray(item.image)
        else:
            self.rgb = np.repeat(common.grey255(item).astype(np.uint8)[..., None], 3, axis=-1)
        self.bgr = np.ascontiguousarray(self.rgb[..., ::-1])

    def __call__(self, *, positive, negative, box, previous):
        import cv2

        if box is not None and previous is None and not (positive.any() or negative.any()):
            return common.run_grabcut(self.rgb, box, iterations=ITERATIONS)
        if box is None:
            mask = np.full(positive.shape, cv2.GC_PR_BGD, np.uint8)
        else:
            inside = previous > 0 if previous is not None else box
            mask = np.where(inside, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
            mask[~box] = cv2.GC_BGD
        mask[positive] = cv2.GC_FGD
        mask[negative] = cv2.GC_BGD
        models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)  # its k-means initialisation is random (common.GRABCUT_SEEDS)
        cv2.grabCut(self.bgr, mask, None, *models, ITERATIONS, cv2.GC_INIT_WITH_MASK)
        return np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)


class RandomWalker:
    """scikit-image's random walker from the clicks (see the module docstring)."""

    def __init__(self, item, *, beta=130.0, tol=1e-3):
        self.features = features(item)
        self.spacing = _relative_spacing(item)
        self.beta, self.tol = beta, tol
        self.mode = "cg_mg" if importlib.util.find_spec("pyamg") else "cg_j"

    def seeds(self, positive, negative, box):
        """Seed image: 1 = object, 2 = background, 0 = to be solved for."""
        seeds = np.zeros(positive.shape, np.int32)
        if box is not None:
            seeds[~box] = 2
            seeds[box_core(box, self.spacing)] = 1
        seeds[negative] = 2
        seeds[positive] = 1
        if not (seeds == 2).any():
            seeds[border(seeds.shape) & (seeds == 0)] = 2
        return seeds

    def __call__(self, *, positive, negative, box, previous):
        from skimage.segmentation import random_walker

        seeds = self.seeds(positive, negative, box)
        unknown = ndi.find_objects((seeds == 0).astype(np.uint8))
        if not unknown:
            return (seeds == 1).astype(np.uint8)
        # outside the unknown voxels' bounding box (and a one-voxel frame of seeds) every
        # voxel is a seed: the solution inside does not depend on it
        crop = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in unknown[0])
        labels = seeds == 1
        labels[crop] = random_walker(self.features[crop], seeds[crop], beta=self.beta,
                                     mode=self.mode, tol=self.tol, spacing=self.spacing,
                                     channel_axis=-1) == 1
        return labels.astype(np.uint8)


class GraphCut:
    """Boykov-Jolly graph cut with contrast-sensitive weights (see the module docstring)."""

    def __init__(self, item, *, gamma=GAMMA):
        image = features(item)
        channels = image.shape[-1]
        bins = BINS.get(channels, 16)
        self.hist_shape = (bins,) * channels
        quantised = np.minimum((image * bins).astype(np.intp), bins - 1)
        self.bin = np.ravel_multi_index(np.moveaxis(quantised, -1, 0), self.hist_shape)
        spacing = _relative_spacing(item)
        contrasts = [np.sum(np.diff(image, axis=axis) ** 2, axis=-1) for axis in range(item.ndim)]
        beta = 1.0 / (2.0 * max(np.mean(np.concatenate([c.ravel() for c in contrasts])), 1e-12))
        self.weights = []  # per axis: weight of the edge from each voxel to the next one
        for axis, contrast in enumerate(contrasts):
            pad = [(0, 0)] * item.ndim
            pad[axis] = (0, 1)
            self.weights.append(np.pad(gamma * np.exp(-beta * contrast) / spacing[axis], pad))
        self.border = border(item.start.shape)

    def unary(self, samples):
        """``-log P(f | samples)`` per voxel from the smoothed histogram of the samples."""
        counts = np.bincount(self.bin[samples], minlength=int(np.prod(self.hist_shape)))
        smooth = ndi.gaussian_filter(counts.reshape(self.hist_shape).astype(np.float64), 1.0,
                                     mode="constant").ravel()
        smooth += UNIFORM_SHARE * max(smooth.sum(), 1.0) / smooth.size
        return -np.log(smooth / smooth.sum())[self.bin]

    def __call__(self, *, positive, negative, box, previous):
        import maxflow

        object_samples = positive if box is None else positive | box
        background_samples = negative | (self.border if box is None else ~box)
        background_samples &= ~positive
        fixed_background = negative if box is None else (negative | ~box) & ~positive
        cost_object = self.unary(object_samples)  # paid by a voxel labelled object
        cost_background = self.unary(background_samples)
        cost_background[positive] = HARD
        cost_object[fixed_background] = HARD
        cost_object[positive] = cost_background[fixed_background] = 0.0

        graph = maxflow.GraphFloat()
        nodes = graph.add_grid_nodes(positive.shape)
        for axis, weights in enumerate(self.weights):
            structure = np.zeros((3,) * positive.ndim)
            structure[tuple(2 if a == axis else 1 for a in range(positive.ndim))] = 1
            graph.add_grid_edges(nodes, weights=weights, structure=structure, symmetric=True)
        # source = object: a voxel left on the sink side (background) cuts its source edge
        graph.add_grid_tedges(nodes, cost_background, cost_object)
        graph.maxflow()
        return (~graph.get_grid_segments(nodes)).astype(np.uint8)


PEERS = {"grabcut": GrabCut, "random_walker": RandomWalker, "graphcut": GraphCut}
