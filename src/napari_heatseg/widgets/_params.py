"""Form fields for the heat method's parameters, made from the core's parameter object.

Names, defaults, ranges, labels and tooltips all come from
:class:`napari_heatseg.core.ictm.HeatParameters`, so a parameter added there shows up here
with its own help. A parameter whose default is chosen from the input (``None`` in the
core) reads 0 in the form, meaning "automatic"; where 0 is a value of its own (``edge``: the
plain Gaussian), "auto" sits one step below 0 instead.
"""

from magicgui.widgets import CheckBox, ComboBox, FloatSlider, FloatSpinBox, SpinBox

from napari_heatseg.core.ictm import HeatParameters

__all__ = ["heat_parameter_widgets", "heat_parameter_values"]


def _widget(name, default, help, hints):
    label = hints.pop("label", name)
    if "choices" in hints:
        return ComboBox(label=label, choices=list(hints["choices"]), value=default, tooltip=help)
    if isinstance(default, bool):
        return CheckBox(label=label, value=default, tooltip=help)
    if default is None and _zero_is_a_value(name):  # "auto" one step below 0, shown as such
        below = -hints.get("step", 0.1)
        widget = FloatSpinBox(label=label, value=below, tooltip=f"{help} 'auto' (below 0): chosen from "
                              "the input.", **{**hints, "min": below})
        widget.native.setSpecialValueText("auto")  # the text Qt shows at the minimum
        return widget
    if default is None:  # chosen from the input: 0 = automatic
        return FloatSpinBox(label=f"{label} (0 = auto)", value=0.0, tooltip=f"{help} 0: automatic.", **hints)
    if isinstance(default, int):
        return SpinBox(label=label, value=default, tooltip=help, **hints)
    if hints.get("max") == 1.0:  # a share: a slider reads better
        return FloatSlider(label=label, value=default, tooltip=help, **hints)
    return FloatSpinBox(label=label, value=default, tooltip=help, **hints)


def _zero_is_a_value(name):
    """Whether ``name`` = 0 is a valid setting of its own (then 0 cannot mean 'automatic')."""
    try:
        HeatParameters.from_keywords(**{name: 0.0})
    except (TypeError, ValueError):
        return False
    return True


def heat_parameter_widgets(names):
    """``{name: widget}`` for the heat parameters ``names``, in that order."""
    described = HeatParameters.describe()
    return {name: _widget(name, *described[name]) for name in names}


def heat_parameter_values(widgets):
    """The keyword arguments the widgets say: automatic ones (0, or below 0 where 0 is a
    value of its own) are left out."""
    described = HeatParameters.describe()
    values = {}
    for name, widget in widgets.items():
        default = described[name][0]
        if default is None and (widget.value < 0 or (not widget.value and not _zero_is_a_value(name))):
            continue
        values[name] = type(default)(widget.value) if default is not None else float(widget.value)
    return values
