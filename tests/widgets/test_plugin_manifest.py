"""The npe2 manifest: valid, installed from the top-level file, every target importable."""

import importlib
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "napari.yaml"


def manifest():
    return yaml.safe_load(MANIFEST.read_text())


def test_every_python_name_imports():
    commands = manifest()["contributions"]["commands"]
    assert len(commands) >= 4
    for command in commands:
        module, _, attribute = command["python_name"].partition(":")
        assert callable(getattr(importlib.import_module(module), attribute)), command["python_name"]


def test_the_core_does_not_import_qt():
    code = ("import sys, napari_heatseg, napari_heatseg._sample_data; "
            "bad = [m for m in ('napari', 'qtpy', 'PyQt5', 'PyQt6', 'magicgui') if m in sys.modules]; "
            "sys.exit(', '.join(bad) if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_installed_plugin_loads_the_top_level_manifest():
    packaged = resources.files("napari_heatseg").joinpath("napari.yaml").read_text()
    assert packaged == MANIFEST.read_text()


def test_npe2_validate():
    npe2 = shutil.which("npe2")
    command = [npe2] if npe2 else [sys.executable, "-m", "npe2"]
    result = subprocess.run([*command, "validate", "napari-heatseg"], capture_output=True, text=True)
    assert result.returncode == 0 and "valid" in result.stdout, result.stdout + result.stderr


def test_napari_finds_the_contributions():
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()
    contributions = pm.get_manifest("napari-heatseg").contributions
    assert [w.display_name for w in contributions.widgets] == ["Heat segmentation"]
    assert {s.key for s in contributions.sample_data} == {"nuclei2d", "mri3d", "rgb_photo"}


@pytest.mark.slow
def test_wheel_contains_the_manifest(tmp_path):
    """A built wheel carries napari.yaml and the samples with real content (not dangling links).

    Built from a copy of the project (symlinks kept as symlinks, as git stores them), so
    the shared source tree gets no build/ folder.
    """
    source = tmp_path / "project"
    ignore = shutil.ignore_patterns("*.egg-info", "__pycache__", "build", "dist")
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "napari.yaml"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "sample_data", source / "sample_data")
    assert (source / "src" / "napari_heatseg" / "napari.yaml").is_symlink()
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q",
                             "-w", str(tmp_path / "dist")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("napari_heatseg-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = archive.read("napari_heatseg/napari.yaml").decode()
        entry_points = archive.read(next(n for n in archive.namelist() if n.endswith("entry_points.txt"))).decode()
        samples = {n.rsplit("/", 1)[-1]: archive.read(n) for n in archive.namelist() if "/sample_data/" in n}
    assert packaged == MANIFEST.read_text()
    assert "napari-heatseg = napari_heatseg:napari.yaml" in entry_points
    for path in (ROOT / "sample_data").glob("*.tif"):  # File > Open Sample works from a wheel too
        assert samples[path.name] == path.read_bytes()
