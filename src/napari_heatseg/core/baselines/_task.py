"""Glue shared by every baseline: scope, seeds, grey conversion and label assignment.

A :class:`Task` is the part of the image a baseline works on, with the seeds it
starts from. For ``scope="inside"`` it is the bounding box of the marked region:
the deep core of each label's region (at least half its maximal depth) serves as
that label's seed and the region's outer rim (and everything outside it) as
background seed, as in GrabCut's rectangle. For ``"object"`` and ``"all"`` the
seeds are the marks themselves, and the background seeds (needed by the watershed
and the random walker) are the unmarked pixels far from every label's intensities (more than 3 standard
deviations of each label's seeds; the farthest 5 % if none is that far).
:meth:`Task.finish` confines the answer to the region, drops invalid pixels and,
for ``"object"``, keeps only components connected to each label's mark.
:func:`baseline` declares each baseline's numeric parameters and their ranges,
checked before any work, and answers for the grey-only methods when the grey image is
flat.
"""

import functools
import inspect
import warnings
from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi

from ..morphology import keep_touching
from ..scope import make_scope

# Rec. 601 luma weights: grey-only methods see colour images as their luminance
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
RIM_WIDTH = 2  # voxels of the marked region's border used as background seed ("inside")
FAR = 3.0  # standard deviations from every label's marks for a background seed
# a grey range within float32 rounding of normalised channel sums holds no contrast
FLAT = 64 * float(np.finfo(np.float32).eps)


def grey(image):
    """Channels-last image to one channel: luminance for RGB, the channel mean otherwise."""
    if image.shape[-1] == 1:
        return image[..., 0]
    if image.shape[-1] == 3:
        return image @ LUMA
    return image.mean(axis=-1)


class Task:
    """The cropped image, seeds and region one baseline works on."""

    def __init__(self, prepared, scope=None):
        self.prepared = prepared
        constraints = make_scope(prepared) if scope is None else scope
        self.scope = constraints.name
        self.n_labels = prepared.n_labels
        self.spacing = prepared.spacing
        if constraints.region is not None:  # "inside"
            box = ndi.find_objects((constraints.region > 0).astype(np.uint8))[0]
            self.box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
        else:
            self.box = tuple(slice(None) for _ in prepared.phases.shape)
        self.constraints = constraints.crop(self.box)
        self.region = self.constraints.region
        self.image = prepared.image[self.box]
        self.valid = prepared.valid[self.box]
        self.seeds = self._inside_seeds() if self.region is not None else self.constraints.marks
        self._grey = None

    @property
    def ndim(self):
        return self.seeds.ndim

    @property
    def grey(self):
        """Luminance (RGB) or channel mean of the cropped image.

        Raises :class:`FlatGrey` if it varies by no more than :data:`FLAT` over the
        valid pixels (colours whose luminance is constant; a flat crop): a grey-only
        method has nothing to follow there, and :func:`baseline` returns the start.
        """
        if self._grey is None:
            self._grey = grey(self.image)
            values = self._grey[self.valid]
            if values.size == 0 or np.ptp(values) <= FLAT:
                raise FlatGrey
        return self._grey

    def _inside_seeds(self):
        """The deep core of each label's region, and the user's seeds."""
        seeds = np.zeros(self.region.shape, np.int32)
        for k in range(1, self.n_labels + 1):
            depth = ndi.distance_transform_edt(self.region == k)
            seeds[(depth >= 0.5 * depth.max()) & (depth > 0)] = k
        return self.constraints.fix(seeds) if self.constraints.seeds is not None else seeds

    def background_seeds(self):
        """Pixels taken as sure background: the rim outside ("inside") or far from all marks,
        and the user's background marks."""
        marked = self.constraints.background
        if self.region is not None:
            depth = ndi.distance_transform_edt(self.region > 0)
            sure = (depth <= RIM_WIDTH) & self.valid
            return sure if marked is None else sure | marked
        distance = np.full(self.seeds.shape, np.inf, np.float32)
        for k in range(1, self.n_labels + 1):
            values = self.image[self.seeds == k]
            mean = values.mean(axis=0)
            std = np.maximum(values.std(axis=0), 0.02)
            distance = np.minimum(distance, np.sqrt((((self.image - mean) / std) ** 2).mean(axis=-1)))
        candidates = self.valid & (self.seeds == 0)
        if marked is not None:
            return candidates & (marked | (distance > FAR))
        if not candidates.any():
            return candidates
        far = candidates & (distance > FAR)
        if not far.any():  # no pixel is that far: take the farthest 5 %
            far = candidates & (distance >= np.percentile(distance[candidates], 95))
        return far

    def marker_image(self):
        """Seeds with background seeds as phase ``n_labels + 1`` (0 = unknown), as int32
        (room for the extra phase, and for -1 where a method wants 'inactive')."""
        markers = self.seeds.astype(np.int32)
        markers[self.background_seeds() & (markers == 0)] = self.n_labels + 1
        return markers

    def assign_classes(self, classes, n_classes):
        """Phases from a class map: each class goes to the seeds that most fill it.

        ``votes[c, k]`` is the share of label ``k``'s seeds lying in class ``c`` (k = 0:
        the background evidence: the rim for ``"inside"``, the unmarked pixels
        otherwise); class ``c`` goes to the label with the largest share. Labels that
        each have most of their seeds in the same class split it by nearest seed.
        """
        background = self.background_seeds() if self.region is not None else (self.seeds == 0)
        evidence = [background & self.valid] + [self.seeds == k for k in range(1, self.n_labels + 1)]
        votes = np.zeros((n_classes, self.n_labels + 1))
        for k, where in enumerate(evidence):
            counts = np.bincount(classes[where], minlength=n_classes)[:n_classes]
            votes[:, k] = counts / max(counts.sum(), 1)
        phases = np.zeros(classes.shape, np.int32)
        nearest = None
        for c in range(n_classes):
            winner = int(np.argmax(votes[c]))
            if winner == 0:
                continue
            sharing = [k for k in range(1, self.n_labels + 1) if votes[c, k] > 0.5]
            in_class = classes == c
            if len(sharing) > 1 and winner in sharing:
                if nearest is None:
                    nearest = self.nearest_seed()
                split = np.where(np.isin(nearest, sharing), nearest, winner)
                phases[in_class] = split[in_class]
            else:
                phases[in_class] = winner
        return phases

    def nearest_seed(self):
        """Index of the label whose seed is nearest each pixel (physical distance)."""
        indices = ndi.distance_transform_edt(self.seeds == 0, sampling=self.spacing,
                                             return_distances=False, return_indices=True)
        return self.seeds[tuple(indices)]

    def combine(self, masks):
        """Phases from one mask per label; overlaps go to the nearest seed."""
        phases = np.zeros(self.seeds.shape, np.int32)
        count = np.zeros(self.seeds.shape, np.int32)
        for k, mask in enumerate(masks, start=1):
            phases[mask] = k
            count += mask
        if (count > 1).any():
            nearest = self.nearest_seed()
            overlap = count > 1
            phases[overlap] = nearest[overlap]
        return phases

    def finish(self, phases):
        """Full-size phases: region, validity and scope applied."""
        phases = np.where(self.valid, phases, 0).astype(np.int32)
        if self.region is not None:
            phases = np.where(phases == self.region, phases, 0)
        elif self.scope == "object":
            kept = np.zeros_like(phases)
            for k in range(1, self.n_labels + 1):
                kept[keep_touching(phases == k, self.seeds == k)] = k
            phases = kept
        out = np.zeros(self.prepared.phases.shape, np.int32)
        out[self.box] = phases
        return out


def physical_sizes(size, spacing):
    """An odd window size per axis covering ``size`` of the finest voxels physically."""
    finest = min(spacing)
    return tuple(max(3, int(round(size * finest / h)) // 2 * 2 + 1) for h in spacing)


def check_2d(task, method, alternative):
    if task.ndim != 2:
        raise ValueError(
            f"method {method!r} works on 2D images only (scikit-image's implementation); "
            f"got a {task.ndim}D image. Use {alternative!r} for 3D, or segment slice by slice."
        )


class FlatGrey(Exception):
    """The grey image a grey-only method works on holds no contrast (see :attr:`Task.grey`)."""


class Bound(NamedTuple):
    """The values a numeric baseline parameter may take: ``low <= value <= high`` (``low <
    value`` if ``strict``), finite, a whole number if ``whole``, None too if ``optional``."""

    low: float
    high: float = np.inf
    strict: bool = False
    whole: bool = False
    optional: bool = False


def baseline(**bounds):
    """Decorate a baseline: its keyword parameters are checked against their :class:`Bound`,
    and a flat grey image gives the start back.

    The errors name the method, the parameter, what it may be, what it got and its
    default: ``TypeError`` for a value that is not a number (or not a whole number),
    ``ValueError`` for one that is NaN, infinite or out of range. The signature is kept
    (``functools.wraps``), so :func:`napari_heatseg.segment` still lists the parameters;
    the check alone is the decorated function's ``check_parameters(**params)``, which
    :func:`napari_heatseg.evolve` calls before it returns its generator.

    A grey-only method (thresholds, Chan-Vese, morphological snakes) whose grey image is
    flat (:class:`FlatGrey`: for example a colour image whose luminance is constant)
    returns the start unchanged with a warning, as the heat method does for a constant
    image, instead of failing inside scikit-image ("Too many bins").
    """
    def decorate(method):
        defaults = {name: p.default for name, p in inspect.signature(method).parameters.items()}

        def check(**params):
            for name, value in params.items():
                if name in bounds:
                    check_parameter(method.__name__, name, value, bounds[name], defaults[name])

        @functools.wraps(method)
        def checked(prepared, scope=None, **params):
            check(**params)
            try:
                return method(prepared, scope, **params)
            except FlatGrey:
                warnings.warn(
                    f"method {method.__name__!r} sees only the image's grey values (luminance for "
                    f"RGB, the channel mean otherwise), and they are constant where it works: it has "
                    f"nothing to follow; returning the start unchanged. Use a method that uses every "
                    f"channel ('heat', 'kmeans', 'region_growing', 'watershed', 'random_walker'), or "
                    f"check the layer or channel you passed.", UserWarning, stacklevel=2)
                return prepared.phases.copy()

        checked.check_parameters, checked.parameter_bounds = check, bounds
        return checked

    return decorate


def check_parameter(method, name, value, bound, default):
    """Raise if ``value`` is not allowed by ``bound`` (see :func:`baseline`)."""
    if value is None and bound.optional:
        return
    kinds = (int, np.integer) if bound.whole else (int, float, np.integer, np.floating)
    if np.isinf(bound.low):
        low = ""
    else:
        low = f", more than {bound.low:g}" if bound.strict else f", {bound.low:g} or more"
    allowed = ("a whole number" if bound.whole else "a finite number") + low + (
        f" and at most {bound.high:g}" if np.isfinite(bound.high) else "") + (
        " (or None)" if bound.optional else "")
    problem = f"`{name}` of method {method!r} must be {allowed}, got {value!r}"
    fix = f"; leave it out for the default ({default!r})."
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, kinds):
        raise TypeError(problem + fix)
    in_range = (value > bound.low if bound.strict else value >= bound.low) and value <= bound.high
    if not (np.isfinite(value) and in_range):
        raise ValueError(problem + fix)
