"""What the ``heatseg`` command says: help texts from the core, the methods list, and the
core's Python advice rewritten in the command line's words (its flags)."""

import re

__all__ = ["cmd_methods", "heat_parameters_help", "in_cli_words"]


def cmd_methods(args):
    import inspect

    if not args.verbose:  # one name a line, for scripts
        import napari_heatseg as hs

        print("\n".join(hs.methods()))
        return 0
    from napari_heatseg.core.baselines import BASELINES
    from napari_heatseg.core.ictm import HeatParameters

    print(f"heat: threshold dynamics with the heat semigroup (the default); --param {', '.join(HeatParameters.describe())}")
    for name, function in BASELINES.items():
        summary = re.sub(r":\w+:`~?([^`]+)`", r"\1", inspect.getdoc(function).splitlines()[0].rstrip("."))
        names = [p for p, v in inspect.signature(function).parameters.items() if v.kind == v.KEYWORD_ONLY]
        print(f"{name}: {summary}; --param {', '.join(names)}")
    return 0


def heat_parameters_help():
    """The heat method's parameters for ``--help``, from the core's parameter object."""
    from napari_heatseg.core.ictm import HeatParameters

    lines = ["heat parameters (--param NAME=VALUE; `heatseg methods` lists every method's):"]
    for name, (default, help_text, _) in HeatParameters.describe().items():
        lines.append(f"  {name} (default {'automatic' if default is None else default}): {help_text}")
    return "\n".join(lines)


_CLI_WORDS = [  # the core speaks Python; on the command line the same advice names the flags
    (re.compile(r"channel_axis=None"), "no --channel-axis"),
    (re.compile(r"channel_axis=(-?\d+)"), r"--channel-axis \1"),
    (re.compile(r"`channel_axis`"), "--channel-axis"),
    (re.compile(r"overwrite=True(?: \(CLI: --overwrite\))?"), "--overwrite"),
    (re.compile(r"spacing=\(([^)]*)\)"), lambda m: "--spacing " + ",".join(v.strip() for v in m.group(1).split(",") if v.strip())),
]


def in_cli_words(message):
    """The core's message with its Python keyword advice rewritten as the CLI's flags."""
    for pattern, replacement in _CLI_WORDS:
        message = pattern.sub(replacement, message)
    return message
