"""Seeded and contour baselines: marker watershed, random walker, Chan-Vese and morphological snakes."""

import importlib.util

import numpy as np
from scipy import ndimage as ndi
from skimage import segmentation

from ._task import Bound, Task, baseline, check_2d

SIGMA = Bound(0, high=1e4)  # voxels; beyond that the smoothing spans any image
POSITIVE = Bound(0, strict=True)
WEIGHT = Bound(0)
ITERATIONS = Bound(1, whole=True)
SMOOTHING = Bound(0, whole=True)
# the level-set methods run once per label over the whole image (Chan-Vese: about 0.3 s per
# label at 256**2, 1.2 s at 512**2): beyond this many labels a run takes minutes
MAX_LEVEL_SET_LABELS = 32

__all__ = ["chan_vese", "morph_chan_vese", "morph_geodesic", "random_walker", "watershed"]


def _gradient(task, sigma):
    """Gradient magnitude summed over channels, smoothed by ``sigma`` physical units."""
    sigmas = tuple(sigma * min(task.spacing) / h for h in task.spacing)
    gradient = np.zeros(task.seeds.shape, np.float32)
    for c in range(task.image.shape[-1]):
        gradient += ndi.gaussian_gradient_magnitude(task.image[..., c], sigmas, mode="reflect")
    return gradient


@baseline(sigma=SIGMA, compactness=WEIGHT)
def watershed(prepared, scope=None, *, sigma=1.0, compactness=0.0):
    """Marker watershed on the gradient magnitude (:func:`skimage.segmentation.watershed`).

    Markers are the labels' seeds and the background seeds (see
    :class:`~napari_heatseg.core.baselines._task.Task`). The gradient is summed over
    all channels and computed with spacing. 2D and 3D.

    Parameters
    ----------
    sigma : float
        Gaussian smoothing of the gradient, in finest voxels (scaled per axis by the
        spacing).
    compactness : float
        Compact watershed weight; 0 = classical watershed.
    """
    task = Task(prepared, scope)
    markers = task.marker_image()
    basins = segmentation.watershed(_gradient(task, sigma), markers, compactness=compactness)
    basins[basins == prepared.n_labels + 1] = 0
    return task.finish(basins)


@baseline(beta=POSITIVE, tol=POSITIVE)
def random_walker(prepared, scope=None, *, beta=130.0, tol=1e-3):
    """Random walker from the seeds (:func:`skimage.segmentation.random_walker`).

    The solver is conjugate gradient with multigrid preconditioning when ``pyamg``
    is installed (about 3x faster), Jacobi preconditioning otherwise.
    Every channel is used (``channel_axis``) and the voxel spacing is passed on,
    relative to the finest axis (so ``beta`` means the same in micrometres and in
    millimetres). Background seeds as for :func:`watershed`. 2D and 3D.

    Parameters
    ----------
    beta : float
        Edge penalty: larger values make the walker stop harder at intensity edges.
    tol : float
        Tolerance of the conjugate-gradient solver.
    """
    task = Task(prepared, scope)
    markers = task.marker_image()
    markers[~task.valid & (markers == 0)] = -1  # inactive: no data there
    if markers.max() < prepared.n_labels + 1:
        raise ValueError(
            "random_walker found no background seed (every unmarked pixel looks like a "
            "marked one); mark a smaller region or use scope='inside' with a box."
        )
    mode = "cg_mg" if importlib.util.find_spec("pyamg") else "cg_j"
    result = segmentation.random_walker(task.image, markers, beta=beta, mode=mode, tol=tol,
                                        spacing=tuple(h / min(task.spacing) for h in task.spacing),
                                        channel_axis=-1)
    result[(result == prepared.n_labels + 1) | (result < 0)] = 0
    return task.finish(result)


def _per_label(task, run, initial, method):
    """One run per label, on arrays reshaped by :func:`_thicken` (results shaped back).

    Refuses more than :data:`MAX_LEVEL_SET_LABELS` labels before the first run.
    """
    if task.n_labels > MAX_LEVEL_SET_LABELS:
        raise ValueError(
            f"method {method!r} runs once per label over the image; {task.n_labels} labels would "
            f"take {task.n_labels} runs (minutes), and it takes at most {MAX_LEVEL_SET_LABELS}. Use "
            f"method='heat', which evolves every label at once, or segment the labels in groups of "
            f"at most {MAX_LEVEL_SET_LABELS}.")
    shape = task.seeds.shape
    inner = tuple(slice(1, 2) if n == 1 else slice(None) for n in _snake_shape(shape))
    masks = [np.asarray(run(_thicken(initial(k))), bool)[inner].reshape(shape)
             for k in range(1, task.n_labels + 1)]
    return task.finish(task.combine(masks))


def _snake_shape(shape):
    """``shape`` without its length-1 axes, padded back to 2D if fewer remain."""
    kept = [n for n in shape if n > 1]
    return [1] * (2 - len(kept)) + kept


def _thicken(array):
    """Drop length-1 axes (a 1-slice volume is a 2D image); a line becomes 3 equal rows.

    scikit-image's level-set methods take numerical gradients along every axis, which
    an axis of length 1 does not have. Edge padding is the Neumann boundary condition;
    the middle row is the answer.
    """
    array = array.reshape(_snake_shape(array.shape))
    return np.pad(array, [(1, 1) if n == 1 else (0, 0) for n in array.shape], mode="edge")


@baseline(num_iter=ITERATIONS, smoothing=SMOOTHING, lambda1=WEIGHT, lambda2=WEIGHT)
def morph_chan_vese(prepared, scope=None, *, num_iter=100, smoothing=1, lambda1=1.0, lambda2=1.0):
    """Morphological Chan-Vese (:func:`skimage.segmentation.morphological_chan_vese`).

    Started from each label's seeds (one two-phase run per label; overlaps go to
    the nearest seed). Grey only: colour images are reduced to their luminance.
    2D and 3D; the spacing is not used (the library has no spacing option).

    Parameters
    ----------
    num_iter : int
        Number of iterations.
    smoothing : int
        Smoothing steps per iteration (1-4).
    lambda1, lambda2 : float
        Weights of the inside and outside fidelity.
    """
    task = Task(prepared, scope)

    grey = _thicken(task.grey)

    def run(init):
        return segmentation.morphological_chan_vese(grey, num_iter, init_level_set=init,
                                                    smoothing=smoothing, lambda1=lambda1,
                                                    lambda2=lambda2)

    return _per_label(task, run, lambda k: task.seeds == k, "morph_chan_vese")


@baseline(num_iter=ITERATIONS, sigma=SIGMA, alpha=POSITIVE, smoothing=SMOOTHING,
          balloon=Bound(-np.inf, optional=True))
def morph_geodesic(prepared, scope=None, *, num_iter=100, sigma=2.0, alpha=100.0, smoothing=1, balloon=None):
    """Morphological geodesic active contour (:func:`skimage.segmentation.morphological_geodesic_active_contour`).

    The edge map is :func:`skimage.segmentation.inverse_gaussian_gradient` of the
    grey image (luminance for colour). With ``scope="inside"`` the contour starts on
    the marked region and shrinks onto the object; otherwise it starts on the
    seeds and grows. 2D and 3D; the spacing is not used (no spacing option).

    Parameters
    ----------
    num_iter : int
        Number of iterations.
    sigma, alpha : float
        Smoothing (voxels) and steepness of the edge map.
    smoothing : int
        Smoothing steps per iteration (1-4).
    balloon : float, optional
        Balloon force: negative shrinks, positive grows. Default -1 for
        ``scope="inside"``, +1 otherwise.
    """
    task = Task(prepared, scope)
    if balloon is None:
        balloon = -1.0 if task.region is not None else 1.0
    edges = segmentation.inverse_gaussian_gradient(_thicken(task.grey), alpha=alpha, sigma=sigma)

    def run(init):
        return segmentation.morphological_geodesic_active_contour(
            edges, num_iter, init_level_set=init, smoothing=smoothing, balloon=balloon)

    if task.region is not None:
        return _per_label(task, run, lambda k: task.region == k, "morph_geodesic")
    return _per_label(task, run, lambda k: task.seeds == k, "morph_geodesic")


def _level_set(mask):
    """Signed distance to the mask's boundary, scaled like scikit-image's ``'disk'`` start.

    ``chan_vese`` moves the level set only where it is near 0 and stops when the
    level set's RMS change is below ``tol``: a +-1 step start stops at once.
    """
    inside = ndi.distance_transform_edt(mask)
    outside = ndi.distance_transform_edt(~mask)
    return (inside - outside) / (3.0 * max(inside.max(), 1.0))


@baseline(mu=WEIGHT, lambda1=WEIGHT, lambda2=WEIGHT, tol=POSITIVE, max_num_iter=ITERATIONS, dt=POSITIVE)
def chan_vese(prepared, scope=None, *, mu=0.25, lambda1=1.0, lambda2=1.0, tol=1e-3, max_num_iter=200, dt=0.5):
    """Chan-Vese level set (:func:`skimage.segmentation.chan_vese`), 2D only.

    Started from each label's seeds (one two-phase run per label). Grey only:
    colour images are reduced to their luminance. scikit-image implements it for
    2D images; 3D input raises a ValueError pointing to ``"morph_chan_vese"``.

    Parameters
    ----------
    mu : float
        Weight of the boundary length (larger = smoother).
    lambda1, lambda2 : float
        Weights of the inside and outside fidelity.
    tol, max_num_iter, dt : float, int, float
        Convergence tolerance, iteration cap and time step.
    """
    task = Task(prepared, scope)
    check_2d(task, "chan_vese", "morph_chan_vese")
    grey = _thicken(task.grey).astype(np.float64)

    def run(init):
        level_set = _level_set(init)
        return segmentation.chan_vese(grey, mu=mu, lambda1=lambda1,
                                      lambda2=lambda2, tol=tol, max_num_iter=max_num_iter, dt=dt,
                                      init_level_set=level_set)

    return _per_label(task, run, lambda k: task.seeds == k, "chan_vese")
