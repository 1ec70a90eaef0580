"""Rasterise a Shapes layer onto an image layer's voxel grid.

Vertices go from the Shapes layer's data coordinates to world coordinates and then to
the image layer's data coordinates, so both layers' scale, translate, rotate and affine
are respected. Pixel centres sit at integer coordinates (napari's convention); a pixel
belongs to a filled shape when its centre is inside or on the boundary.

- rectangles, polygons (including lasso polygons) and ellipses are filled;
- a path that comes back to where it began (a freehand lasso: its ends closer than
  ``LASSO_GAP`` voxels) is filled too;
- other paths and lines are drawn as one-voxel-wide scribbles (for ``scope='object'``/``'all'``).

In a 3D image each shape must lie in one plane of axis 0 (drawn on a slice);
a 2D Shapes layer over a 3D image is drawn on the slice the viewer shows.
"""

import numpy as np
from skimage.draw import line, polygon2mask

from ._inputs import LayerChoiceError

__all__ = ["LASSO_GAP", "shapes_start"]

#: A path whose two ends are closer than this (in voxels) is a closed lasso and is filled.
LASSO_GAP = 3.0


def shapes_start(shapes, image, spatial_shape, *, world_point, label=1, layer_channel_axis=None):
    """Rasterise every shape of ``shapes`` as ``label`` on the grid of ``image``.

    Parameters
    ----------
    shapes : napari.layers.Shapes
    image : napari.layers.Image
        The layer whose voxel grid the result lives on.
    spatial_shape : tuple of int
        Spatial shape of the image (2D or 3D).
    world_point : sequence of float
        The viewer's current position (``viewer.dims.point``): fills in the world
        coordinates a lower-dimensional Shapes layer does not have.
    label : int
        Label value of the shapes.
    layer_channel_axis : int or None
        Axis of ``image``'s data holding channels (dropped from the coordinates).

    Returns
    -------
    start : ndarray of uint8 or larger unsigned int
    """
    if len(shapes.data) == 0:
        raise LayerChoiceError(f"shapes layer {shapes.name!r} is empty; draw a rectangle, ellipse, "
                               "polygon or path on the object first.")
    start = np.zeros(spatial_shape, dtype=np.min_scalar_type(max(int(label), 1)))
    for index, (kind, vertices) in enumerate(zip(shapes.shape_type, shapes.data)):
        coords = np.array([_to_image(v, shapes, image, world_point, layer_channel_axis) for v in vertices])
        if len(spatial_shape) == 3:
            plane = coords[:, 0]
            if np.ptp(plane) > 0.5:
                raise LayerChoiceError(f"shape {index} of {shapes.name!r} is not drawn on one slice of "
                                       "the image's first axis; draw shapes in a 2D view of the stack.")
            z = int(round(float(plane.mean())))
            if not 0 <= z < spatial_shape[0]:
                raise LayerChoiceError(f"shape {index} of {shapes.name!r} lies on slice {z}, outside the "
                                       f"image (0..{spatial_shape[0] - 1}).")
            target, coords = start[z], coords[:, 1:]
        else:
            target = start
        target[_rasterise_2d(kind, coords, target.shape)] = label
    if not start.any():
        raise LayerChoiceError(f"the shapes of {shapes.name!r} do not cover any pixel of the image; "
                               "draw them over the image.")
    return start


def _to_image(vertex, shapes, image, world_point, layer_channel_axis):
    world = np.array(world_point, dtype=float)
    shape_world = np.asarray(shapes.data_to_world(vertex), dtype=float)
    world[len(world) - len(shape_world):] = shape_world
    data = np.asarray(image.world_to_data(world), dtype=float)
    if layer_channel_axis is not None:
        data = np.delete(data, layer_channel_axis)
    return data


def _rasterise_2d(kind, vertices, shape):
    if kind in ("rectangle", "polygon"):
        return polygon2mask(shape, vertices)
    if kind == "ellipse":
        return _ellipse_mask(vertices, shape)
    if kind == "path" and len(vertices) > 3 and np.linalg.norm(vertices[0] - vertices[-1]) < LASSO_GAP:
        return polygon2mask(shape, vertices)
    if kind in ("path", "line"):
        mask = np.zeros(shape, dtype=bool)
        points = np.round(vertices).astype(int)
        for (r0, c0), (r1, c1) in zip(points[:-1], points[1:]):
            rr, cc = line(r0, c0, r1, c1)
            keep = (rr >= 0) & (rr < shape[0]) & (cc >= 0) & (cc < shape[1])
            mask[rr[keep], cc[keep]] = True
        return mask
    raise LayerChoiceError(f"shape type {kind!r} is not supported; use rectangles, ellipses, "
                           "polygons or paths.")


def _ellipse_mask(corners, shape):
    """The ellipse inscribed in the (possibly sheared) box given by its 4 corners."""
    centre = corners.mean(axis=0)
    axes = np.column_stack([(corners[1] - corners[0]) / 2, (corners[3] - corners[0]) / 2])
    mask = np.zeros(shape, dtype=bool)
    if abs(np.linalg.det(axes)) < 1e-12:
        return mask
    low = np.clip(np.floor(corners.min(axis=0)).astype(int), 0, shape)
    high = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 1, 0, shape)
    grid = np.indices(tuple(high - low)).reshape(2, -1).T + low
    local = np.linalg.solve(axes, (grid - centre).T)
    inside = (local**2).sum(axis=0) <= 1 + 1e-9
    mask[grid[inside, 0], grid[inside, 1]] = True
    return mask
