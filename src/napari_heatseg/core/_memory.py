"""How much memory a run may use, how much the heat method needs, and the refusal.

:func:`available_memory` is the smallest of the limits that can stop an allocation: the
system's available RAM, the room left under every memory limit of the process's cgroups
(v1 and v2, the process's own group and each parent: a limit set on a parent slice holds
its children too), and the room left under the address-space limit ``RLIMIT_AS``
(``ulimit -v``). :func:`check_memory` (with the heat method's estimate,
:func:`estimate_memory`) and :func:`refuse_if_too_big` refuse a run, before any work, that
would not fit, saying the estimate, what is available and the ways out.
"""

import os
from pathlib import Path

__all__ = ["HEAT_MEMORY_PARAMETERS", "available_memory", "check_memory", "estimate_memory",
           "refuse_if_too_big"]

HEAT_MEMORY_PARAMETERS = ("model", "components", "edge")  # the heat parameters that change memory use
_NO_LIMIT = 2**60  # cgroup v1 writes "no limit" as the largest page multiple below 2**63


def available_memory():
    """Bytes of memory this process can still allocate, or None if no limit can be told.

    The smallest of the system's available memory (psutil, else ``/proc/meminfo``, else
    ``os.sysconf``), the room left under each cgroup memory limit of this process
    (:func:`cgroup_room`) and the room left under ``RLIMIT_AS``.
    """
    candidates = [_system_available(), cgroup_room(), _address_space_room()]
    candidates = [c for c in candidates if c is not None]
    return min(candidates) if candidates else None


def _system_available():
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # psutil missing or unsupported platform: try the OS directly
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _address_space_room():
    """``RLIMIT_AS`` (soft) minus this process's virtual size, or None without a limit."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/statm") as f:
            virtual = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError, AttributeError):  # not POSIX, or no /proc
        return None
    return max(limit - virtual, 0)


def cgroup_room(proc_cgroup="/proc/self/cgroup", mountinfo="/proc/self/mountinfo"):
    """Bytes left under the tightest cgroup memory limit of this process, or None.

    Each of the process's memory cgroups (the v2 unified hierarchy, ``0::/path``, and the
    v1 ``memory`` controller, ``N:memory:/path``) is found under its mount point (from
    ``mountinfo``); the group and every parent up to the mount's root are read. Room at a
    level is its limit (``memory.max``; v1 ``memory.limit_in_bytes``) minus its usage
    (``memory.current``; v1 ``memory.usage_in_bytes``), less the inactive page cache
    (``inactive_file`` of ``memory.stat``), which the kernel reclaims before it fails an
    allocation.

    Parameters
    ----------
    proc_cgroup, mountinfo : str or Path
        The files that say where the process's groups are (the defaults describe this
        process; other paths are for tests).
    """
    try:
        groups = Path(proc_cgroup).read_text().splitlines()
        mounts = Path(mountinfo).read_text().splitlines()
    except OSError:
        return None
    rooms = []
    for line in groups:
        hierarchy, controllers, path = line.split(":", 2)
        version = 2 if hierarchy == "0" and controllers == "" else 1
        if version == 1 and "memory" not in controllers.split(","):
            continue
        for mount_root, mount_point in _cgroup_mounts(mounts, version):
            inside = path == mount_root or path.startswith(mount_root.rstrip("/") + "/")
            relative = os.path.relpath(path, mount_root) if inside else "."  # else: a namespace's root
            rooms += _rooms_up_to(Path(mount_point), Path(mount_point, relative), version)
    return min(rooms) if rooms else None


def _cgroup_mounts(mountinfo_lines, version):
    """(root, mount point) of each cgroup mount of that version (v1: the memory controller)."""
    for line in mountinfo_lines:
        fields, _, tail = line.partition(" - ")
        fields, tail = fields.split(), tail.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        if (version == 2 and tail[0] == "cgroup2") or (
                version == 1 and tail[0] == "cgroup" and "memory" in tail[2].split(",")):
            yield fields[3], fields[4]


def _rooms_up_to(mount_point, group, version):
    limit_file, usage_file = ("memory.max", "memory.current") if version == 2 else (
        "memory.limit_in_bytes", "memory.usage_in_bytes")
    rooms = []
    level = group.resolve()
    top = mount_point.resolve()
    while True:
        try:
            limit = (level / limit_file).read_text().strip()
            usage = int((level / usage_file).read_text().strip())
        except (OSError, ValueError):
            limit = "max"  # this level is not readable (or not a group): no limit known here
        if limit != "max" and int(limit) < _NO_LIMIT:
            rooms.append(max(int(limit) - usage + _inactive_file(level), 0))
        if level == top or top not in level.parents:
            return rooms
        level = level.parent


def _inactive_file(level):
    try:
        for line in (level / "memory.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "inactive_file":
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def estimate_memory(spatial_shape, n_labels, n_channels=1, *, model="gaussian", components=3, edge=0.0):
    """Peak working memory, in bytes, of ``method="heat"`` beyond the caller's own arrays.

    The heat method's own model (:meth:`~napari_heatseg.core.ictm.HeatParameters.memory_bytes`,
    calibrated with ``tracemalloc``), for the only parameters that change it.

    Parameters
    ----------
    spatial_shape : tuple of int
        Spatial shape of the image (no channel axis).
    n_labels : int
        Number of distinct labels in the start.
    n_channels : int, optional
        Number of image channels.
    model, components, edge
        The heat parameters that change memory use (see
        :class:`~napari_heatseg.core.ictm.HeatParameters`): a Gaussian mixture keeps
        ``components`` responsibilities per voxel, edge weighting a weight field.

    Returns
    -------
    int
        Estimated bytes.
    """
    from .ictm.params import HeatParameters  # here: the heat package loads the compiled loops

    parameters = HeatParameters(model=model, components=components, edge=edge)
    return parameters.memory_bytes(spatial_shape, n_labels, n_channels)


def check_memory(spatial_shape, n_labels, n_channels=1, **heat_params):
    """Refuse, before any work, a run whose working memory exceeds the available memory.

    Parameters
    ----------
    spatial_shape, n_labels, n_channels
        As for :func:`estimate_memory`.
    **heat_params
        The heat parameters as given to :func:`napari_heatseg.segment` (already checked
        against the method's signature); only :data:`HEAT_MEMORY_PARAMETERS` are passed
        on to :func:`estimate_memory`, the others do not change memory use.

    Returns
    -------
    int
        The estimate in bytes, when it fits (or when free memory cannot be told).

    Raises
    ------
    MemoryError
        If the estimate exceeds the available memory (see :func:`refuse_if_too_big`).
    """
    memory_params = {name: heat_params[name] for name in HEAT_MEMORY_PARAMETERS if name in heat_params}
    needed = estimate_memory(spatial_shape, n_labels, n_channels, **memory_params)
    refuse_if_too_big(needed, spatial_shape, f"{n_labels} label(s) and {n_channels} channel(s)")
    return needed


def refuse_if_too_big(needed, spatial_shape, what, heat_needed=None):
    """Raise ``MemoryError`` if ``needed`` bytes exceed :func:`available_memory`.

    The message gives both numbers and the ways out, in Python and on the command line:
    the out-of-core path (``napari_heatseg.segment_chunked``; a ``.zarr`` image for
    ``heatseg segment``), cropping, downsampling. ``what`` describes the work (for
    example ``"2 label(s) and 1 channel(s)"``). For a baseline, which has no out-of-core
    path, ``heat_needed`` is the heat method's estimate for the same image, offered first.
    """
    available = available_memory()
    if available is None or needed <= available:
        return
    switch = "" if heat_needed is None else (
        f"That method has no out-of-core path; method='heat' needs about {_gib(heat_needed)} here "
        f"and has one. ")
    raise MemoryError(
        f"segmenting an image of spatial shape {tuple(spatial_shape)} with {what} needs about "
        f"{_gib(needed)} of working memory, but only {_gib(available)} is available. {switch}"
        f"Segment it out of core by chunks: in Python with napari_heatseg.segment_chunked "
        f"(module napari_heatseg.core.chunked) on a dask or zarr array; on the command line by "
        f"giving .zarr stores (heatseg segment image.zarr --start start.zarr -o labels.zarr). "
        f"Or crop the image to the region of interest, or downsample it (and use fewer labels), "
        f"before segmenting."
    )


def _gib(n_bytes):
    return f"{n_bytes / 2**30:.2f} GiB"
