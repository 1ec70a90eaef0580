"""Where a run's memory limit comes from: the system, every cgroup level (v1 and v2), RLIMIT_AS."""

import resource

import numpy as np
import pytest

from napari_heatseg.core import _memory


def _group(directory, files):
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)


def _v2(limit, current, inactive=0):
    return {"memory.max": limit, "memory.current": str(current), "memory.stat": f"anon 1\ninactive_file {inactive}\n"}


def _v1(limit, usage, inactive=0):
    return {"memory.limit_in_bytes": str(limit), "memory.usage_in_bytes": str(usage),
            "memory.stat": f"cache 5\ninactive_file {inactive}\n"}


def _proc(tmp_path, cgroup, mountinfo):
    (tmp_path / "cgroup").write_text(cgroup)
    (tmp_path / "mountinfo").write_text(mountinfo)
    return dict(proc_cgroup=tmp_path / "cgroup", mountinfo=tmp_path / "mountinfo")


def test_cgroup_v2_nested_limit_of_a_parent_counts(tmp_path):
    """The process's own group has no limit; its parent slice's limit still binds."""
    root = tmp_path / "fs"
    _group(root, _v2("max", 10**9))
    _group(root / "user.slice", _v2(str(8 * 2**30), 6 * 2**30, inactive=2**30))  # 3 GiB room
    _group(root / "user.slice" / "job", _v2("max", 6 * 2**30))
    files = _proc(tmp_path, "0::/user.slice/job\n",
                  f"30 23 0:26 / {root} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n")
    assert _memory.cgroup_room(**files) == 3 * 2**30


def test_cgroup_v2_the_tightest_level_wins(tmp_path):
    root = tmp_path / "fs"
    _group(root / "a", _v2(str(4 * 2**30), 2**30))  # 3 GiB room
    _group(root / "a" / "b", _v2(str(2 * 2**30), 2**30))  # 1 GiB room
    files = _proc(tmp_path, "0::/a/b\n", f"30 23 0:26 / {root} rw - cgroup2 cgroup2 rw\n")
    assert _memory.cgroup_room(**files) == 2**30


def test_cgroup_v1_memory_controller_and_its_parents(tmp_path):
    """A v1 hierarchy (hybrid layout as on this machine): 'no limit' is a huge number."""
    memory = tmp_path / "memory"
    _group(memory, _v1(9223372036854771712, 5 * 2**30))
    _group(memory / "docker", _v1(2 * 2**30, 2**30 + 100))
    _group(memory / "docker" / "c1", _v1(9223372036854771712, 2**30))
    files = _proc(tmp_path, "5:devices:/docker/c1\n4:memory:/docker/c1\n0::/\n",
                  f"35 31 0:32 / {memory} rw,relatime - cgroup cgroup rw,memory\n"
                  f"32 31 0:29 / {tmp_path / 'cpu'} rw,relatime - cgroup cgroup rw,cpu\n")
    assert _memory.cgroup_room(**files) == 2**30 - 100


def test_cgroup_mounted_at_the_groups_own_root(tmp_path):
    """Inside a container the mount's root is the container's group: read the mount point."""
    memory = tmp_path / "memory"
    _group(memory, _v1(2**30, 2**29))
    files = _proc(tmp_path, "4:memory:/docker/c1\n",
                  f"35 31 0:32 /docker/c1 {memory} rw - cgroup cgroup rw,memory\n")
    assert _memory.cgroup_room(**files) == 2**29


def test_no_cgroup_limit_or_no_cgroup_files(tmp_path):
    root = tmp_path / "fs"
    _group(root / "g", _v2("max", 10))
    files = _proc(tmp_path, "0::/g\n", f"30 23 0:26 / {root} rw - cgroup2 cgroup2 rw\n")
    assert _memory.cgroup_room(**files) is None
    assert _memory.cgroup_room(tmp_path / "missing", tmp_path / "missing") is None


def test_address_space_limit_is_seen(monkeypatch):
    """ulimit -v: the room is the soft limit minus what the process has mapped already."""
    monkeypatch.setattr(resource, "getrlimit", lambda which: (
        (2**40, resource.RLIM_INFINITY) if which == resource.RLIMIT_AS else (resource.RLIM_INFINITY,) * 2))
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * resource.getpagesize()
    room = _memory._address_space_room()
    assert 0 < room <= 2**40 - mapped + 2**30  # the process may map more between the two reads
    monkeypatch.setattr(resource, "getrlimit", lambda which: (mapped // 2, resource.RLIM_INFINITY))
    assert _memory._address_space_room() == 0
    assert _memory.available_memory() == 0  # the tightest limit wins


def test_refusal_names_the_python_and_the_command_line_route(monkeypatch):
    monkeypatch.setattr(_memory, "available_memory", lambda: 2**30)
    with pytest.raises(MemoryError) as refusal:
        _memory.check_memory((1024, 1024, 1024), 2, model="gmm", components=5, tau=3.0)
    message = str(refusal.value)
    assert "napari_heatseg.segment_chunked" in message
    assert "heatseg segment image.zarr --start start.zarr -o labels.zarr" in message
    assert ".;" not in message and ". ;" not in message


def test_estimate_memory_takes_only_the_parameters_that_change_it():
    assert (_memory.estimate_memory((64, 64), 1, model="gmm", components=8)
            > _memory.estimate_memory((64, 64), 1, model="gmm", components=2))
    assert _memory.estimate_memory((64, 64), 1, edge=0.5) > _memory.estimate_memory((64, 64), 1)
    with pytest.raises(TypeError):
        _memory.estimate_memory((64, 64), 1, tau=2.0)  # no longer swallowed silently
    assert _memory.check_memory((64, 64), 1, tau=2.0, lam=1.0) == _memory.estimate_memory((64, 64), 1)
    assert np.isfinite(_memory.estimate_memory((4096,) * 3, 16, 4))
