"""Overlap, surface and instance metrics between a reference segmentation and a test one.

All functions take label or boolean arrays of the same shape (2D or 3D). Distances,
areas and volumes are in physical units given by ``spacing`` (one value per axis).
:func:`instance_scores` compares two instance labellings (one id per object) whatever
their ids: objects are matched by overlap, not by label value.

Conventions for empty masks (documented because libraries differ):

- both masks empty: Dice = IoU = 1 (perfect agreement) and both surface distances 0;
- exactly one mask empty: Dice = IoU = 0 and both surface distances ``inf``.
"""

import numpy as np
from scipy import ndimage as ndi

__all__ = [
    "compare",
    "dice",
    "format_table",
    "hausdorff95",
    "instance_scores",
    "iou",
    "mean_surface_distance",
    "volume",
]


def _check_pair(image_true, image_test):
    image_true = np.asarray(image_true)
    image_test = np.asarray(image_test)
    if image_true.shape != image_test.shape:
        raise ValueError(
            f"`image_true` has shape {image_true.shape} but `image_test` has shape "
            f"{image_test.shape}; compare segmentations of the same image."
        )
    if image_true.size == 0:
        raise ValueError("the masks are empty arrays (size 0); pass 2D or 3D masks.")
    return image_true, image_test


def _spacing(spacing, ndim):
    if spacing is None:
        return (1.0,) * ndim
    if np.isscalar(spacing):
        spacing = (spacing,) * ndim
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != ndim or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(
            f"`spacing` needs one finite positive number per axis ({ndim}), got {spacing}."
        )
    return spacing


def _binary_pair(image_true, image_test, ignore):
    """Foreground masks and the mask of pixels that count (not ``ignore`` in the reference)."""
    image_true, image_test = _check_pair(image_true, image_test)
    counted = np.ones(image_true.shape, bool) if ignore is None else image_true != ignore
    truth = (image_true != 0) & counted
    test = (image_test != 0) & counted
    return truth, test, counted


def dice(image_true, image_test, *, ignore=None):
    """Dice coefficient ``2 |A ∩ B| / (|A| + |B|)`` of the nonzero pixels.

    Parameters
    ----------
    image_true, image_test : (M, N[, P]) array_like
        Reference and test masks (nonzero = foreground).
    ignore : scalar, optional
        Pixels where ``image_true == ignore`` are left out (e.g. 255, GrabCut's
        unknown band).

    Returns
    -------
    float
        In [0, 1]; 1 when both masks are empty.
    """
    truth, test, _ = _binary_pair(image_true, image_test, ignore)
    total = np.count_nonzero(truth) + np.count_nonzero(test)
    if total == 0:
        return 1.0
    return 2.0 * np.count_nonzero(truth & test) / total


def iou(image_true, image_test, *, ignore=None):
    """Intersection over union (Jaccard index) of the nonzero pixels.

    Takes the same arguments as :func:`dice`. Returns 1 when both masks are empty.
    """
    truth, test, _ = _binary_pair(image_true, image_test, ignore)
    union = np.count_nonzero(truth | test)
    if union == 0:
        return 1.0
    return np.count_nonzero(truth & test) / union


def volume(mask, *, spacing=None):
    """Area (2D) or volume (3D) of the nonzero pixels in physical units."""
    mask = np.asarray(mask)
    return float(np.count_nonzero(mask) * np.prod(_spacing(spacing, mask.ndim)))


def _surface(mask):
    """Boundary pixels of a mask: in the mask with a face-neighbour outside it (or the border)."""
    eroded = ndi.binary_erosion(mask, structure=ndi.generate_binary_structure(mask.ndim, 1),
                                border_value=0)
    return mask & ~eroded


def _surface_distances(truth, test, counted, spacing):
    """Distances from each surface to the other: (truth -> test, test -> truth), or None if empty."""
    surfaces = [_surface(truth), _surface(test)]
    if not surfaces[0].any() and not surfaces[1].any():
        return np.zeros(0), np.zeros(0)
    if not surfaces[0].any() or not surfaces[1].any():
        return None
    distances = []
    for here, there in ((surfaces[0], surfaces[1]), (surfaces[1], surfaces[0])):
        to_there = ndi.distance_transform_edt(~there, sampling=spacing)
        distances.append(to_there[here & counted])
    return distances[0], distances[1]


def hausdorff95(image_true, image_test, *, spacing=None, ignore=None):
    """95th-percentile Hausdorff distance between the two masks' surfaces.

    The larger of the two directed 95th percentiles (surface of ``image_true`` to
    that of ``image_test`` and back), in physical units. Surface pixels lying where
    ``image_true == ignore`` are left out.

    Returns
    -------
    float
        0 when both masks are empty, ``inf`` when exactly one is.
    """
    truth, test, counted = _binary_pair(image_true, image_test, ignore)
    pair = _surface_distances(truth, test, counted, _spacing(spacing, truth.ndim))
    if pair is None:
        return float("inf")
    return float(max((np.percentile(d, 95) if d.size else 0.0) for d in pair))


def mean_surface_distance(image_true, image_test, *, spacing=None, ignore=None):
    """Symmetric mean surface distance, in physical units.

    The mean over the surface pixels of both masks of the distance to the other
    mask's surface. Same arguments and empty-mask rules as :func:`hausdorff95`.
    """
    truth, test, counted = _binary_pair(image_true, image_test, ignore)
    pair = _surface_distances(truth, test, counted, _spacing(spacing, truth.ndim))
    if pair is None:
        return float("inf")
    distances = np.concatenate(pair)
    return float(distances.mean()) if distances.size else 0.0


def compare(reference, test, *, spacing=None, ignore=None):
    """Per-label comparison of a test labelling against a reference.

    Parameters
    ----------
    reference, test : (M, N[, P]) array_like of int
        Label images (0 = background). Each label value found in either (other than
        0 and ``ignore``) gets a row, comparing ``reference == v`` with ``test == v``.
    spacing : sequence of float, optional
        Physical pixel size per axis (None = 1).
    ignore : scalar, optional
        Reference value marking pixels left out of every score.

    Returns
    -------
    list of dict
        One row per label with keys ``label``, ``dice``, ``iou``, ``hd95``, ``msd``,
        ``size_reference`` and ``size_test`` (area or volume in physical units).
    """
    reference, test = _check_pair(reference, test)
    spacing = _spacing(spacing, reference.ndim)
    values = np.union1d(np.unique(reference), np.unique(test))
    values = [v for v in values if v != 0 and (ignore is None or v != ignore)]
    counted = np.ones(reference.shape, bool) if ignore is None else reference != ignore
    rows = []
    for value in values:
        truth = (reference == value) & counted
        other = (test == value) & counted
        rows.append({
            "label": value.item() if hasattr(value, "item") else value,
            "dice": dice(truth, other),
            "iou": iou(truth, other),
            "hd95": hausdorff95(truth, other, spacing=spacing),
            "msd": mean_surface_distance(truth, other, spacing=spacing),
            "size_reference": volume(truth, spacing=spacing),
            "size_test": volume(other, spacing=spacing),
        })
    return rows


DSB2018_THRESHOLDS = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))  # 0.5, 0.55, ..., 0.95


def _object_index(image):
    """Flat object index of every pixel (0 = background) and the size of every index."""
    values = image.ravel()
    if values.dtype == bool or (values.min() >= 0 and values.max() <= 4 * values.size):
        index = values.astype(np.intp)
    else:  # negative or very sparse ids: renumber them 1, 2, ... (0 stays background)
        index = np.unique(values, return_inverse=True)[1].ravel() + 1
        index[values == 0] = 0
    return index, np.bincount(index)


def _pair_iou(image_true, image_test):
    """IoU of every overlapping (reference object, test object) pair.

    Only pairs that share pixels are listed: the pair codes ``true * (max_test + 1) +
    test`` of the pixels inside both foregrounds are counted with ``np.unique``, so the
    cost is one pass over the pixels and a sort of the overlap, however many objects
    there are. Returns the pairs' IoU and the numbers of reference and test objects.
    """
    true_index, true_sizes = _object_index(image_true)
    test_index, test_sizes = _object_index(image_test)
    both = (true_index > 0) & (test_index > 0)
    codes = true_index[both].astype(np.int64) * test_sizes.size + test_index[both]
    codes, overlap = np.unique(codes, return_counts=True)
    true_of_pair, test_of_pair = np.divmod(codes, test_sizes.size)
    union = true_sizes[true_of_pair] + test_sizes[test_of_pair] - overlap
    n_true = int(np.count_nonzero(true_sizes[1:]))
    n_test = int(np.count_nonzero(test_sizes[1:]))
    return overlap / union, n_true, n_test


def instance_scores(image_true, image_test, *, threshold=0.5, thresholds=DSB2018_THRESHOLDS):
    """Object-level agreement of two instance labellings: F1, mean AP and count error.

    A reference object and a test object *match* at threshold ``t`` when their IoU
    exceeds ``t``. For ``t >= 0.5`` an object can match at most one other (two objects
    with IoU above 0.5 with the same object would have to share more than half of it
    each), so the matching is one-to-one without an assignment problem. With ``TP``
    the matched pairs, ``FP = n_test - TP`` and ``FN = n_true - TP``:

    - precision ``TP / n_test``, recall ``TP / n_true``, F1 ``2 TP / (n_true + n_test)``;
    - ``AP_t = TP_t / (TP_t + FP_t + FN_t)``, and the mean AP of the Data Science Bowl
      2018 averages it over ``t`` in 0.5, 0.55, ..., 0.95 (Caicedo et al. 2019);
    - count error ``n_test - n_true`` (signed: negative when objects are missed or merged).

    Parameters
    ----------
    image_true, image_test : (M, N[, P]) array_like of int
        Reference and test instance labels (0 = background, every other value one
        object). Ids need not match nor be contiguous. A boolean mask is one object.
    threshold : float, optional
        IoU above which two objects match for precision, recall and F1, in [0.5, 1).
    thresholds : sequence of float, optional
        IoU thresholds of the mean AP, each in [0.5, 1).

    Returns
    -------
    dict
        ``n_true``, ``n_test``, ``tp``, ``fp``, ``fn``, ``precision``, ``recall``,
        ``f1`` (at ``threshold``), ``mean_ap``, ``ap`` (one value per threshold) and
        ``count_error``. With no object in either image every score is 1; with objects
        in only one of them, 0.

    References
    ----------
    .. [1] Caicedo, J. C. et al. (2019). Nucleus segmentation across imaging experiments:
       the 2018 Data Science Bowl. Nature Methods 16, 1247-1253. :DOI:`10.1038/s41592-019-0612-7`

    Examples
    --------
    >>> truth = np.array([[1, 1, 0, 2, 2]])
    >>> test = np.array([[5, 5, 0, 0, 7]])
    >>> scores = instance_scores(truth, test)
    >>> scores["tp"], scores["fn"], scores["f1"]   # object 2 is only half found (IoU 0.5)
    (1, 1, 0.5)
    """
    image_true, image_test = _check_pair(image_true, image_test)
    for name, image in (("image_true", image_true), ("image_test", image_test)):
        if not (image.dtype == bool or np.issubdtype(image.dtype, np.integer)):
            raise TypeError(f"`{name}` must hold integer instance labels (or a boolean mask), "
                            f"got dtype {image.dtype}; round or cast it, e.g. `labels.astype(int)`.")
    if len(thresholds) == 0:
        raise ValueError("`thresholds` is empty; pass at least one IoU threshold, e.g. (0.5,).")
    checked = np.asarray([threshold, *thresholds], float)
    if not np.all((checked >= 0.5) & (checked < 1)):
        raise ValueError(f"IoU thresholds must lie in [0.5, 1) (below 0.5 the matching is not "
                         f"one-to-one), got threshold={threshold!r}, thresholds={thresholds!r}.")
    pair_iou, n_true, n_test = _pair_iou(image_true, image_test)

    def matched(t):  # one-to-one for t >= 0.5: each pair above t is a true positive
        return int(np.count_nonzero(pair_iou > t))

    tp = matched(threshold)
    if n_true + n_test == 0:
        ap = [1.0] * len(thresholds)
    else:
        ap = [matched(t) / (n_true + n_test - matched(t)) for t in thresholds]
    return {
        "n_true": n_true,
        "n_test": n_test,
        "tp": tp,
        "fp": n_test - tp,
        "fn": n_true - tp,
        "precision": tp / n_test if n_test else float(n_true == 0),
        "recall": tp / n_true if n_true else float(n_test == 0),
        "f1": 2 * tp / (n_true + n_test) if n_true + n_test else 1.0,
        "mean_ap": float(np.mean(ap)),
        "ap": tuple(ap),
        "count_error": n_test - n_true,
    }


_COLUMNS = (
    ("label", "label", "{}"),
    ("dice", "Dice", "{:.3f}"),
    ("iou", "IoU", "{:.3f}"),
    ("hd95", "HD95", "{:.2f}"),
    ("msd", "MSD", "{:.2f}"),
    ("size_reference", "size ref", "{:.1f}"),
    ("size_test", "size test", "{:.1f}"),
)


def format_table(rows):
    """Format the rows of :func:`compare` as a Markdown table (one line per label)."""
    header = "| " + " | ".join(title for _, title, _ in _COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in _COLUMNS) + "|"
    lines = [header, rule]
    for row in rows:
        lines.append("| " + " | ".join(fmt.format(row[key]) for key, _, fmt in _COLUMNS) + " |")
    if not rows:
        lines.append("| (no labels in either image) |" + " |" * (len(_COLUMNS) - 1))
    return "\n".join(lines)
