"""Form fields for the heat method's parameters, made from the core's parameter object.

Names, defaults, ranges, labels and tooltips all come from
:class:`napari_heatseg.core.ictm.HeatParameters`, so a parameter added there shows up here
with its own help; a parameter whose default is chosen from the input (``None`` in the
core) reads 0 in the form, meaning "automatic".
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
    if default is None:  # chosen from the input: 0 = automatic
        return FloatSpinBox(label=f"{label} (0 = auto)", value=0.0, tooltip=f"{help} 0: automatic.", **hints)
    if isinstance(default, int):
        return SpinBox(label=label, value=default, tooltip=help, **hints)
    if hints.get("max") == 1.0:  # a share: a slider reads better
        return FloatSlider(label=label, value=default, tooltip=help, **hints)
    return FloatSpinBox(label=label, value=default, tooltip=help, **hints)


def heat_parameter_widgets(names):
    """``{name: widget}`` for the heat parameters ``names``, in that order."""
    described = HeatParameters.describe()
    return {name: _widget(name, *described[name]) for name in names}


def heat_parameter_values(widgets):
    """The keyword arguments the widgets say: automatic ones (0) are left out."""
    described = HeatParameters.describe()
    values = {}
    for name, widget in widgets.items():
        default = described[name][0]
        if default is None and not widget.value:
            continue
        values[name] = type(default)(widget.value) if default is not None else float(widget.value)
    return values
