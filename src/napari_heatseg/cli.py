"""The ``heatseg`` command: ``segment`` one image, ``batch`` a folder, ``demo`` the samples.

    heatseg segment IMAGE --start MASK -o OUT [--method --scope --spacing z,y,x
                    --channel-axis N --param key=value ... --stack MODE --overwrite]
    heatseg batch IN_DIR -o OUT_DIR (--start MASK | --start-dir DIR | --start-method NAME)
                    [--workers N | --scheduler ADDRESS] [same options as segment]
    heatseg demo [--out DIR] [--overwrite]

Outputs are written atomically (temporary file + rename) and never replace an existing file
unless ``--overwrite`` is given; inputs are never replaced. A user error prints one line on
stderr and exits with status 1 (2 for a malformed command line).
"""

import argparse
import ast
import os
import sys
import time
from pathlib import Path

import numpy as np

from ._cli_words import cmd_methods, heat_parameters_help, in_cli_words

__all__ = ["main"]


class UserError(Exception):
    """A problem with the command line or files, reported as one line."""


def _parse_spacing(text):
    try:
        values = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise UserError(f"--spacing {text!r}: give numbers separated by commas, e.g. 6.5,0.78,0.78") from None
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise UserError(f"--spacing {text!r}: every value must be finite and positive.")
    return values


def _parse_params(items):
    params = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise UserError(f"--param {item!r}: write it as name=value, e.g. --param max_num_iter=50")
        lowered = value.strip().lower()
        if lowered in ("true", "false", "none"):
            parsed = {"true": True, "false": False, "none": None}[lowered]
        else:
            try:
                parsed = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                parsed = value.strip()
        params[key.strip()] = parsed
    return params


def _add_method_options(parser):
    parser.add_argument("--method", default="heat", help="segmentation method (see `heatseg methods`); default heat")
    parser.add_argument("--scope", default=None, choices=("object", "inside", "all"),
                        help="object: one object grown from each label; inside: within the marked region; "
                             "all: everything that looks like the marks (default: inside for a box-shaped "
                             "start, object otherwise)")
    parser.add_argument("--spacing", type=str, default=None,
                        help="voxel size per spatial axis, e.g. 6.5,0.78,0.78 (default: from the file, else 1)")
    parser.add_argument("--channel-axis", type=int, default=None, help="axis of the colour channels (RGB: -1)")
    parser.add_argument("--param", action="append", metavar="NAME=VALUE",
                        help="method parameter, repeatable, e.g. --param lam=2 --param max_num_iter=50")
    parser.add_argument("--stack", choices=("propagate", "independent", "full3d"), default=None,
                        help="segment slice by slice along --axis: propagate from the annotated slices, "
                             "or each slice independently from the same start")
    parser.add_argument("--axis", type=int, default=0, help="stack axis for --stack (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def _settings(args):
    if args.method not in _methods():
        raise UserError(f"--method {args.method!r} is unknown; choose one of {', '.join(_methods())}.")
    return dict(method=args.method, scope=args.scope,
                spacing=list(_parse_spacing(args.spacing)) if args.spacing else None,
                channel_axis=args.channel_axis, params=_parse_params(args.param),
                stack=args.stack, axis=args.axis)


def _methods():
    import napari_heatseg as hs

    return hs.methods()


def _progress(**kwargs):
    from tqdm.auto import tqdm

    return tqdm(file=sys.stderr, dynamic_ncols=True, disable=None, **kwargs)


def _make_folder(path, flag, *, parents=False):
    try:
        path.mkdir(parents=parents, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{flag} {path}: cannot create this folder ({exc.strerror or exc}); choose a folder you "
                        f"can write to.") from None


# ----------------------------------------------------------------------------------- segment

def _cmd_segment(args):
    from napari_heatseg.core.batch import dask_client, segment_file
    from napari_heatseg.core.outputs import (check_labels_format, check_separate, check_target, remove_stale_parts,
                                             write_labels)

    outputs = [("-o", args.output)] + ([("--overlay", args.overlay)] if args.overlay is not None else [])
    check_separate(outputs, [("IMAGE", args.image), ("--start", args.start)])
    if args.overlay is not None:
        if Path(args.overlay).suffix.lower() != ".png":
            raise UserError(f"--overlay {args.overlay}: the overlay is a picture; give a .png path.")
        check_target(Path(args.overlay), args.overwrite)
    settings = _settings(args)
    if args.instances and (settings["scope"] != "all" or str(args.image).rstrip("/").endswith(".zarr")):
        raise UserError("--instances splits the result of --scope all into one id per object; add "
                        "--scope all (a .zarr volume cannot be split yet).")
    if str(args.image).rstrip("/").endswith(".zarr"):
        return _segment_zarr(args, settings)
    output = Path(args.output)
    if output.parent.is_dir():
        remove_stale_parts(output.parent, [output.name])  # left by a killed run; a live run's are kept
    check_target(output, args.overwrite)  # fail before the work, not after
    check_labels_format(output)
    t0 = time.perf_counter()
    slices = settings["stack"] is not None
    workers = args.workers if settings["stack"] == "independent" else 1
    with _progress(desc="slices" if slices else "heatseg", unit="slice" if slices else "it") as bar, \
            dask_client(workers=workers) as executor:
        def progress(done, total, energy):
            if total is not None:
                bar.total = total
            bar.update(1)
            if energy is not None and np.isfinite(energy):
                bar.set_postfix(energy=f"{energy:.4g}", refresh=False)
        labels, spacing = segment_file(args.image, start=args.start, executor=executor, progress=progress,
                                       **settings)
    if args.instances:
        from napari_heatseg.core.instances import instances
        from napari_heatseg.core.io import read_image

        labels = instances(labels > 0, spacing=spacing, marks=read_image(args.start)[0])
    path = write_labels(output, labels, spacing=spacing, overwrite=args.overwrite, like=args.image)
    if args.overlay is not None:
        _write_overlay(args, labels)
    objects = f"{int(labels.max())} objects, " if args.instances else ""
    print(f"wrote {path} ({objects}{np.count_nonzero(labels)} labelled voxels, {time.perf_counter() - t0:.1f} s)")
    return 0


def _write_overlay(args, labels):
    from napari_heatseg.core.io import colour_axis, read_image
    from napari_heatseg.demo import write_overlay

    image, _ = read_image(args.image)
    start, _ = read_image(args.start)
    channel_axis = args.channel_axis if args.channel_axis is not None else colour_axis(args.image, image, start)
    if np.ndim(start) != labels.ndim:
        start = np.zeros(labels.shape, np.uint8)  # a start file in another layout: outline the result only
    write_overlay(args.overlay, image, channel_axis, labels, start, overwrite=args.overwrite)
    print(f"wrote {args.overlay}")


def _segment_zarr(args, settings):
    """A zarr volume: full 3D by chunks on the active dask scheduler."""
    from napari_heatseg.core.ictm.chunked import segment_chunked

    if not str(args.output).rstrip("/").endswith(".zarr") or not str(args.start).rstrip("/").endswith(".zarr"):
        raise UserError("a .zarr image needs a .zarr start and a .zarr output (-o labels.zarr).")
    if not Path(args.image).exists() or not Path(args.start).exists():
        raise UserError(f"{args.image if not Path(args.image).exists() else args.start}: no such zarr store.")
    if settings["method"] != "heat" or settings["stack"] is not None or settings["channel_axis"] is not None:
        raise UserError("a .zarr volume is segmented in full 3D with --method heat on grey data only.")
    t0 = time.perf_counter()
    with _progress(desc="heatseg (chunked)", unit="it") as bar:
        labels = segment_chunked(args.image, args.start, out=args.output, spacing=settings["spacing"],
                                 scope=settings["scope"], overwrite=args.overwrite,
                                 iter_callback=lambda i, e, c: bar.update(1), **settings["params"])
    print(f"wrote {args.output} (shape {labels.shape}, chunks {labels.chunksize}, {time.perf_counter() - t0:.1f} s)")
    return 0


# ------------------------------------------------------------------------------------- batch

def _cmd_batch(args):
    from napari_heatseg.core.batch import find_inputs, make_jobs, target_names
    from napari_heatseg.core.folder_lock import folder_lock
    from napari_heatseg.core.outputs import check_separate, remove_stale_parts

    given = [x for x in (args.start, args.start_dir, args.start_method) if x]
    if len(given) != 1:
        raise UserError("give exactly one of --start FILE (shared), --start-dir DIR (one per image, same name) "
                        "or --start-method NAME (e.g. threshold_otsu).")
    if args.start_method and args.start_method not in _methods():
        raise UserError(f"--start-method {args.start_method!r} is unknown; choose one of {', '.join(_methods()[1:])}.")
    if args.start_method and args.stack == "propagate":
        raise UserError("--start-method marks every slice, so --stack propagate has nothing to propagate; "
                        "use --stack independent.")
    if args.start_dir and not Path(args.start_dir).is_dir():
        raise UserError(f"--start-dir {args.start_dir}: folder not found.")
    if args.start and not Path(args.start).is_file():
        raise UserError(f"--start {args.start}: file not found.")
    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}.")
    settings = _settings(args)
    inputs = find_inputs(args.input_dir)
    out_dir = Path(args.output)
    check_separate([("-o", out_dir)], [("IN_DIR", args.input_dir), ("--start-dir", args.start_dir),
                                       ("--start", args.start)])
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"-o {out_dir} is a file; give a folder.")
    if not out_dir.parent.is_dir():
        raise UserError(f"-o {out_dir}: its parent folder {out_dir.parent} does not exist.")
    _make_folder(out_dir, "-o")
    if not os.access(out_dir, os.W_OK):
        raise UserError(f"-o {out_dir}: folder is not writable; choose another folder.")
    with folder_lock(out_dir):
        names = target_names(inputs, out_dir)
        stale = remove_stale_parts(out_dir, names, every=True)
        jobs, skipped = make_jobs(inputs, out_dir, settings=settings, start=args.start, start_dir=args.start_dir,
                                  start_method=args.start_method, overwrite=args.overwrite)
        try:
            return _run_batch(args, inputs, jobs, skipped, stale, out_dir)
        finally:  # a worker stopped by Ctrl+C mid-write leaves its part; no writer is left by now
            remove_stale_parts(out_dir, names, every=True)


def _run_batch(args, inputs, jobs, skipped, stale, out_dir):
    from napari_heatseg.core.batch import run_jobs

    where = f"scheduler {args.scheduler}" if args.scheduler else (
        f"{min(args.workers, len(jobs))} local workers" if args.workers > 1 and len(jobs) > 1 else "this process")
    print(f"heatseg batch: {len(inputs)} images, {len(skipped)} already done, {len(jobs)} to do, on {where}"
          + (f"; removed {len(stale)} stale temporary files" if stale else ""), file=sys.stderr)
    results = []
    with _progress(total=len(jobs), desc="batch", unit="image") as bar:
        def on_result(record):
            bar.update(1)
            if record["status"] == "failed":
                bar.write(f"failed: {record['name']}: {record['reason']}", file=sys.stderr)
        try:
            results = run_jobs(jobs, workers=args.workers, scheduler=args.scheduler, on_result=on_result)
        except KeyboardInterrupt:
            bar.close()
            print("heatseg batch: interrupted; finished outputs are kept, run the same command again to resume.",
                  file=sys.stderr)
            return 130
    done = [r for r in results if r["status"] == "done"]
    failed = [r for r in results if r["status"] == "failed"]
    print(f"done {len(done)}, skipped {len(skipped)}, failed {len(failed)} -> {out_dir}")
    for record in skipped:
        print(f"  skipped {record['name']}: {record['reason']}")
    for record in failed:
        print(f"  failed  {record['name']}: {record['reason']}")
    return 1 if failed else 0


# -------------------------------------------------------------------------------------- demo

def _cmd_demo(args):
    import napari_heatseg as hs
    from napari_heatseg.demo import demo_files, run_demo

    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file; give a folder.")
    others = sorted(p.name for p in out_dir.iterdir() if p.name not in demo_files()) if out_dir.is_dir() else []
    if others and not args.overwrite:  # its own earlier demo files are replaced; nothing else is touched
        raise UserError(f"--out {out_dir} holds files the demo did not write ({', '.join(others[:3])}"
                        f"{', ...' if len(others) > 3 else ''}); choose another folder, or pass --overwrite to "
                        f"write the demo files beside them.")
    _make_folder(out_dir, "--out", parents=True)
    params = _parse_params(args.param)
    if args.method not in hs.methods():
        raise UserError(f"--method {args.method!r} is unknown; choose one of {', '.join(hs.methods())}.")
    print(run_demo(out_dir, args.method, params))
    print(f"heatseg demo: wrote labels, overlays (yellow: result, cyan: ground truth, magenta: start) "
          f"and results.md/results.csv to {out_dir.resolve()}")
    return 0


# -------------------------------------------------------------------------------------- main

def _parser():
    from importlib.metadata import PackageNotFoundError, version

    parser = argparse.ArgumentParser(prog="heatseg", description="Segmentation with the heat semigroup.")
    try:
        installed = version("napari-heatseg")
    except PackageNotFoundError:  # run from a source tree
        installed = "unknown (not installed)"
    parser.add_argument("--version", action="version", version=f"heatseg {installed}")
    sub = parser.add_subparsers(dest="command", required=True)

    seg = sub.add_parser("segment", help="segment one image from a start mask", epilog=heat_parameters_help(),
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    seg.add_argument("image", help="image file (.tif, .npy, .nii, .nii.gz, .nrrd, .nhdr, .mha, .mhd, 2D .png/.jpg/"
                                   ".bmp), a DICOM series (its folder, or one of its .dcm files), or a .zarr volume "
                                   "(segmented by chunks)")
    seg.add_argument("--start", required=True, help="start labels, same spatial shape as the image")
    seg.add_argument("-o", "--output", required=True,
                     help="output label file (.tif, .npy, .nii, .nii.gz, .nrrd, .mha, 2D .png); .nrrd, .mha and "
                          ".nii.gz keep the origin, direction and spacing of a NRRD, MetaImage or DICOM image, so "
                          "the labels open aligned in Slicer and ITK-SNAP; for a DICOM series write .nrrd or "
                          ".nii.gz (DICOM is not written)")
    seg.add_argument("--workers", type=int, default=1,
                     help="with --stack independent: segment slices in parallel on a local dask cluster")
    seg.add_argument("--overlay", metavar="PNG", default=None,
                     help="also write a picture of the image with the result's outline (yellow) and the start's "
                          "(magenta); a volume shows its slice with the most result")
    seg.add_argument("--instances", action="store_true",
                     help="with --scope all: one id per object, touching objects split (sized from the start)")
    _add_method_options(seg)
    seg.set_defaults(run=_cmd_segment)

    batch = sub.add_parser("batch", help="segment every image of a folder (resumable, in parallel)")
    batch.add_argument("input_dir", help="folder of images (and of DICOM series, a sub-folder of .dcm files each)")
    batch.add_argument("-o", "--output", required=True, help="output folder (outputs keep the input names)")
    batch.add_argument("--start", help="one start file shared by every image")
    batch.add_argument("--start-dir", help="folder of starts, matched to images by name")
    batch.add_argument("--start-method", help="make each start with this baseline (e.g. threshold_otsu)")
    batch.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 4),
                       help="worker processes on a local dask cluster (1: run in this process)")
    batch.add_argument("--scheduler", help="address of an existing dask scheduler, e.g. tcp://host:8786")
    _add_method_options(batch)
    batch.set_defaults(run=_cmd_batch)

    demo = sub.add_parser("demo", help="run on the bundled samples; writes masks, overlays and an IoU/time table")
    demo.add_argument("--out", default="heatseg-demo", help="output folder (default ./heatseg-demo)")
    demo.add_argument("--method", default="heat", help="method to run (default heat)")
    demo.add_argument("--param", action="append", metavar="NAME=VALUE", help="method parameter, repeatable")
    demo.add_argument("--overwrite", action="store_true", help="write into a non-empty --out folder")
    demo.set_defaults(run=_cmd_demo)

    methods = sub.add_parser("methods", help="list the method names (-v: what each does and its parameters)")
    methods.add_argument("-v", "--verbose", action="store_true", help="say what each method does and its --param names")
    methods.set_defaults(run=cmd_methods)
    return parser


def main(argv=None):
    """Entry point of the ``heatseg`` command; returns the exit status."""
    name = "heatseg"
    try:  # Ctrl+C at any moment, even while the modules load, ends with one line
        args = _parser().parse_args(argv)
        name = f"heatseg {args.command}"
        return _run(args, name)
    except KeyboardInterrupt:
        print(f"{name}: interrupted; nothing half-written was left behind.", file=sys.stderr)
        return 130


def _run(args, name):
    """Run the command; every error the user can act on becomes one line on stderr and status 1."""
    from napari_heatseg.core.io import HeatsegIOError

    try:
        return args.run(args)
    except (UserError, HeatsegIOError, ValueError, TypeError) as exc:
        message = str(exc)
    except BrokenPipeError:  # the output went to a pager or `head` that closed early
        return 0
    except OverflowError as exc:
        message = f"a number is out of range ({exc}); give smaller --param or --spacing values."
    except OSError as exc:  # a full disk, an unwritable folder, ... (HeatsegIOError is caught above)
        from napari_heatseg.core.outputs import describe_os_error

        message = describe_os_error(exc)
    except MemoryError as exc:
        message = str(exc).strip() or ("out of memory; use a smaller image, --stack independent, or a .zarr "
                                       "volume (segmented by chunks).")
    print(f"{name}: error: {in_cli_words(message)}", file=sys.stderr)
    return 1




if __name__ == "__main__":
    sys.exit(main())
