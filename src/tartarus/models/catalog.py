"""The table of architectures that ``tartarus architectures`` prints.

Each architecture is built from its default config (``default_cnn(id)``) on its example input
shapes, so the parameter count and the layer list are those of a real model, not a description
that could drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass

INPUT_KINDS = {
    "patches": "spectrogram patches",
    "vectors": "vectors",
    "sequences": "word-id sequences",
    "several": "several vectors",
    "patches+vectors": "patches + a vector",
}


@dataclass
class ArchitectureInfo:
    """One row of the table: what ``-l`` accepts is ``layers`` (seed index or None, name, output shape)."""
    id: str
    name: str
    input_kind: str
    example_shapes: tuple
    n_params: int
    layers: list
    note: str = ""  # why the model could not be built (a pretrained one whose weights are not installed)


def _sort_key(arch_id):
    return (0, int(arch_id)) if str(arch_id).isdigit() else (1, str(arch_id))


def describe_architectures(ids=None, n_out=10):
    """ArchitectureInfo for ``ids`` (default: all, by id), each built with ``n_out`` outputs."""
    from ..config.families import PRETRAINED_IDS
    from ..errors import MissingInput
    from . import ARCHITECTURES, build_model, default_cnn, get_architecture, named_layers

    chosen = [get_architecture(i) for i in ids] if ids else [ARCHITECTURES[k] for k in sorted(ARCHITECTURES, key=_sort_key)]
    out = []
    for arch in chosen:
        try:
            model = build_model(default_cnn(arch.id), arch.example_shapes, n_out)
        except MissingInput as exc:  # a pretrained architecture without its weights: listed, not built
            if arch.id not in PRETRAINED_IDS:
                raise
            out.append(ArchitectureInfo(arch.id, arch.name, arch.input_kind, tuple(arch.example_shapes), 0, [],
                                        note=str(exc)))
            continue
        layers = [(i, layer.name, tuple(layer.output.shape[1:])) for i, layer in named_layers(model)]
        out.append(ArchitectureInfo(arch.id, arch.name, arch.input_kind, tuple(arch.example_shapes),
                                    int(model.count_params()), layers))
    return out


def _shape(shape):
    return "x".join(str(d) for d in shape)


def format_architectures(infos, layers=True):
    """The table as text; with ``layers``, every architecture's ``-l`` indices and names under it."""
    w = max([4] + [len(info.id) for info in infos])  # the ids of the pretrained models are names
    head = f"{'id':<{w}}  {'name':<52} {'input':<22} {'example input':<22} {'parameters':>11}"
    lines = [head, "-" * len(head)]
    for info in infos:
        shapes = " + ".join(_shape(s) for s in info.example_shapes)
        kind = INPUT_KINDS.get(info.input_kind, info.input_kind)
        lines.append(f"{info.id:<{w}}  {info.name:<52} {kind:<22} {shapes:<22} {info.n_params:>11,}")
        if info.note:
            lines.append(f"{'':>6}not built: {info.note}")
        if layers:
            cells = [f"{'-' if i is None else i}:{name}" for i, name, _ in info.layers]
            row, rows = "", []
            for cell in cells:  # wrap the layer list under the row
                if row and len(row) + len(cell) > 100:
                    rows.append(row)
                    row = ""
                row += (" " if row else "") + cell
            rows.append(row)
            lines += [f"{'':>6}-l {r}" if k == 0 else f"{'':>9}{r}" for k, r in enumerate(rows)]
    lines.append("parameters: the default config (default_cnn) on the example input, 10 outputs; "
                 "-l takes an index or a name")
    if layers:
        lines.append("INDEX:NAME -- INDEX is what the seed's -l INDEX took (its model.layers[INDEX]); '-': no "
                     "seed index (logits where the seed's output Dense held the activation, the inside of a "
                     "nested sub-model), reachable by name")
    return "\n".join(lines)


def forward_flops(model):
    """Floating-point operations of one forward pass per sample (2 per multiply-add).

    Counts the layers that dominate: Conv1D/Conv2D (``2 * kernel size * in channels * filters``
    per output position), Dense (``2 * inputs * units`` per position) and GRU/LSTM (``2 * gates *
    (inputs + units) * units`` per time step); element-wise layers (activations, pooling,
    normalisation) are left out, as they cost a few operations per value.
    """
    import math

    from keras import layers

    total = 0
    for layer in model.layers:
        try:
            in_shape = tuple(layer.input.shape[1:])
            out_shape = tuple(layer.output.shape[1:])
        except (AttributeError, ValueError):
            continue
        if isinstance(layer, (layers.Conv1D, layers.Conv2D)):
            cin = in_shape[-1]
            total += 2 * math.prod(layer.kernel_size) * cin * layer.filters * math.prod(out_shape[:-1])
        elif isinstance(layer, layers.Dense):
            total += 2 * in_shape[-1] * layer.units * math.prod(out_shape[:-1])
        elif isinstance(layer, (layers.GRU, layers.LSTM)):
            gates = 3 if isinstance(layer, layers.GRU) else 4
            steps, n_in = in_shape[0], in_shape[-1]
            total += 2 * gates * (n_in + layer.units) * layer.units * steps
        elif isinstance(layer, layers.Bidirectional):
            inner = layer.forward_layer
            gates = 3 if isinstance(inner, layers.GRU) else 4
            total += 2 * 2 * gates * (in_shape[-1] + inner.units) * inner.units * in_shape[0]
    return int(total)
