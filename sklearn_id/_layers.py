"""Which layers a depth profile visits, and how their activations are read under a memory budget."""

import math

from sklearn_id._base import has_neighbor_seam, takes_precomputed_distances
from sklearn_id._neighbors import PiecewiseDistances
from sklearn_id._pca import StandardisedSpectrum

__all__ = [
    "SplitLayer",
    "auto_checkpoints",
    "block_depths",
    "check_split_layers",
    "count_rows",
    "minimum_samples",
    "output_shapes",
    "plan_passes",
    "relative_depths",
    "transformer_blocks",
    "transformer_checkpoints",
    "whole_layer_needs",
]

_POOLING = ("MaxPool", "AvgPool", "AdaptiveMaxPool", "AdaptiveAvgPool", "LPPool")
_RESIDUAL_BLOCKS = ("BasicBlock", "Bottleneck")


def auto_checkpoints(module, table):
    """The seed paper's checkpoints of a network that is not a transformer, in forward order.

    The input, every pooling layer, every fully connected layer
    (``torch.nn.Linear``), and the stage outputs of residual networks: the
    direct children of the model that are sequences of residual blocks
    (torchvision's ``BasicBlock`` / ``Bottleneck``; ``layer1``-``layer4`` of a
    ResNet).

    Parameters
    ----------
    module : torch.nn.Module
    table : pandas.DataFrame
        :func:`~sklearn_id.list_layers` of the module.

    Returns
    -------
    layers : list of str
    """
    import torch

    modules = dict(module.named_modules())
    stages = {
        name
        for name, child in module.named_children()
        if isinstance(child, torch.nn.Sequential)
        and any(type(block).__name__ in _RESIDUAL_BLOCKS for block in child.children())
    }
    chosen = []
    for name in table["layer"]:
        sub = modules.get(name)
        if (
            name == "input"
            or name in stages
            or isinstance(sub, torch.nn.Linear)
            or type(sub).__name__.startswith(_POOLING)
        ):
            chosen.append(name)
    return chosen


def transformer_blocks(module):
    """The blocks of the model's longest stack of attention blocks, in order; empty for other models.

    A stack is a ``ModuleList`` or ``Sequential`` whose children are all of
    one class and each holds an attention module (a module whose class name
    contains ``Attention``): GPT-2's ``transformer.h``, BERT's
    ``encoder.layer``, a Llama-style decoder's ``model.layers``, timm's
    ``blocks``, torchvision's ``encoder.layers``.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    blocks : list of str
    """
    import torch

    best = []
    for name, sub in module.named_modules():
        if not isinstance(sub, (torch.nn.ModuleList, torch.nn.Sequential)):
            continue
        children = list(sub.named_children())
        if (
            children
            and len({type(child) for _, child in children}) == 1
            and all(any("Attention" in type(part).__name__ for part in child.modules()) for _, child in children)
            and len(children) > len(best)
        ):
            best = [f"{name}.{child}" if name else child for child, _ in children]
    return best


def transformer_checkpoints(table, blocks, embedding_producers):
    """A transformer's checkpoints: the embedding output, every block's output, the final norm.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`~sklearn_id.list_layers` of the model.
    blocks : list of str
        :func:`transformer_blocks` of the model.
    embedding_producers : list of str
        The modules whose output is the tensor the first block reads (the
        residual stream at depth 0), in forward order. The one highest in
        the module tree (the first of those) is the embedding checkpoint;
        none when the first block's input comes from no module.

    Returns
    -------
    layers : list of str
        In forward order. The final norm is the first normalisation module
        (its class name contains ``Norm``) outside the blocks that runs after
        the last one, with the blocks' output shape; none when there is none
        (BERT is post-norm).
    """
    shapes = dict(zip(table["layer"], table["output_shape"]))
    chosen = []
    if embedding_producers:
        chosen.append(min(embedding_producers, key=lambda name: name.count(".")))
    chosen.extend(blocks)
    order = list(table["layer"])
    last = order.index(blocks[-1])
    stack = blocks[-1].rpartition(".")[0]
    for layer, kind in zip(order[last + 1 :], table["type"].iloc[last + 1 :]):
        inside = stack and layer.startswith(stack + ".")
        if not inside and "Norm" in kind and shapes[layer] == shapes[blocks[-1]]:
            chosen.append(layer)
            break
    return chosen


def block_depths(table, blocks):
    """Each layer's relative depth by block: the fraction of the blocks whose output is computed when it runs.

    The embedding and everything before the first block's output is at 0,
    block ``i``'s output at ``(i + 1) / len(blocks)``, the final norm and
    the head at 1; a module inside block ``i`` is at ``i / len(blocks)``.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`~sklearn_id.list_layers` of the model.
    blocks : list of str

    Returns
    -------
    depths : dict of str to float
    """
    done = 0
    ends = set(blocks)
    depths = {}
    for layer in table["layer"]:
        if layer in ends:
            done += 1
        depths[layer] = done / len(blocks)
    return depths


def plan_passes(widths, n_samples, memory_budget):
    """Cut the layers' features into passes over the data that each fit ``memory_budget``.

    The features of all layers, laid end to end in forward order, are cut
    into as few contiguous runs as fit the budget (float32, all samples): one
    run per pass. A layer wider than a run is read in pieces over several
    passes.

    Parameters
    ----------
    widths : dict of str to int
        Flattened width of each layer, in forward order.
    n_samples : int
    memory_budget : int or None
        Bytes; None puts everything in one pass.

    Returns
    -------
    passes : list of dict of str to slice
        For each pass, the features of each layer it reads.
    """
    total = sum(widths.values())
    bytes_per_feature = 4 * n_samples
    if memory_budget is None:
        per_pass = total
    else:
        per_pass = memory_budget // bytes_per_feature
        if per_pass < 1:
            raise ValueError(
                f"memory_budget={memory_budget} bytes cannot hold even one feature of "
                f"the {n_samples} samples in float32; the minimum is {bytes_per_feature} "
                "bytes. Raise memory_budget or profile fewer samples."
            )
    passes = []
    for start in range(0, total, per_pass):
        stop = min(start + per_pass, total)
        pieces = {}
        offset = 0
        for layer, width in widths.items():
            low, high = max(start, offset), min(stop, offset + width)
            if low < high:
                pieces[layer] = slice(low - offset, high - offset)
            offset += width
        passes.append(pieces)
    return passes


def check_split_layers(passes, widths, needs):
    """Raise when a layer is read in pieces (``passes``) but the fit computes ``needs``, which need it whole."""
    split = sorted({layer for pieces in passes for layer, part in pieces.items() if part != slice(0, widths[layer])})
    if split and needs:
        raise ValueError(
            f"Layer(s) {split} exceed memory_budget and would be read in pieces, but "
            f"{'; '.join(needs)}. Raise memory_budget, or set pca_estimator=None."
        )


def whole_layer_needs(*, per_class, compare, per_sample, with_probe, pca_estimator, id_estimator):
    """What a profile with these settings computes that needs each layer whole, not in pieces."""
    needs = []
    if per_class:
        needs.append("per_class needs each class's rows of every layer")
    if compare is not None:
        needs.append("compare and the label overlap need every layer's activations")
    if per_sample:
        needs.append("per_sample needs each sample's rows of every layer")
    if with_probe:
        needs.append("the probe needs every layer's activations at once")
    if pca_estimator not in ("auto", None):
        needs.append("only the default PCA-ID (pca_estimator='auto') can be read in pieces")
    if not has_neighbor_seam(id_estimator) and not takes_precomputed_distances(id_estimator):
        needs.append(f"{type(id_estimator).__name__} cannot take the precomputed distances of a split layer")
    return needs


class SplitLayer:
    """A layer too wide for the memory budget, read one feature slice per pass.

    Its exact distances (:class:`~sklearn_id._neighbors.PiecewiseDistances`)
    and, for the paper's PCA-ID, its standardised spectrum
    (:class:`~sklearn_id._pca.StandardisedSpectrum`) are accumulated slice by
    slice, so the layer is never held whole.

    Parameters
    ----------
    n_samples : int
    width : int
        The layer's flattened width.
    spectrum : bool, default=True
        Accumulate the standardised spectrum too.
    """

    def __init__(self, n_samples, width, *, spectrum=True):
        self.width = width
        self.n_seen = 0
        self.distances = PiecewiseDistances(n_samples)
        self.spectrum = StandardisedSpectrum(n_samples) if spectrum else None

    def add(self, piece):
        """Add a (n_samples, n_piece_features) float32 slice."""
        self.distances.add(piece)
        if self.spectrum is not None:
            self.spectrum.add(piece)
        self.n_seen += piece.shape[1]

    @property
    def complete(self):
        return self.n_seen == self.width


def minimum_samples(subsample):
    """Samples needed so that every random subsample keeps at least 3 points and leaves at least one out.

    A subsample that rounds up to every sample repeats the whole set, and its
    spread (``id_std``) would be a silent 0.
    """
    n_samples = max(3, math.ceil(3 / subsample))
    while round(subsample * n_samples) >= n_samples:
        n_samples += 1
    return n_samples


def relative_depths(module, table, blocks, layers):
    """Each layer's relative depth (by block for a transformer, else by forward position), and the last hidden layer."""
    position = {layer: i for i, layer in enumerate(table["layer"])}
    if blocks:
        depth = block_depths(table, blocks)
    else:
        depth = {layer: i / (len(table) - 1) for layer, i in position.items()}
    output_position = position[_output_layer(module, table)]
    hidden = [layer for layer in layers if position[layer] < output_position]
    return {layer: depth[layer] for layer in layers}, hidden[-1] if hidden else None


def _output_layer(module, table):
    """The network's output layer: the last leaf module to run."""
    modules = dict(module.named_modules())
    leaves = [name for name in table["layer"] if name in modules and not list(modules[name].children())]
    return leaves[-1] if leaves else table["layer"].iloc[-1]


def output_shapes(table, layers):
    """Each layer's output shape per sample, from the listing."""
    ran = table.set_index("layer")
    return {layer: tuple(ran.loc[layer, "output_shape"]) for layer in layers}


def count_rows(inputs, shapes, pooling, batch_size):
    """Points each layer gives: the samples, or, with ``pooling="tokens"``, the real tokens."""
    if pooling != "tokens":
        return inputs.n_samples
    lengths = {shape[0] for shape in shapes.values()}
    if len(lengths) > 1:
        raise ValueError(
            f"pooling='tokens' needs layers with one token count, but these layers output "
            f"{sorted(lengths)} tokens per sample; profile them separately."
        )
    real = inputs.n_real_tokens(batch_size)
    return real if real is not None else inputs.n_samples * lengths.pop()
