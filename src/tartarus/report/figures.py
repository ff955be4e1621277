"""Figures of the report pages: training curves, ROC and PR curves, confusion matrix, ranking curves
over k, an embedding map. Every function returns a matplotlib ``Figure`` on the Agg canvas; nothing
here touches pyplot or the process's backend, and matplotlib is imported only when a figure is made.

``png_bytes(fig)`` renders one for an inline image, ``save_png(fig, path)`` writes it atomically.
"""

from __future__ import annotations

import io

import numpy as np

from ..errors import DataMismatch
from .embedding import NO_GROUP  # the group of items without a class or tag: grey

# one look for every figure: sizes in inches, fonts in points
WIDE = 10.0
FONT = 9
TITLE_FONT = 11
LEGEND_FONT = 8
MODEL_COLOR = "C0"
BASELINE_STYLES = {"random": {"color": "0.55", "linestyle": "--", "marker": "s"},
                   "popularity": {"color": "0.25", "linestyle": (0, (5, 2, 1, 2)), "marker": "^"}}


def _figure(width, height):
    """A bare Figure with an Agg canvas (no pyplot), laid out by matplotlib's constrained layout so
    that legends placed outside the axes get room."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _style(ax):
    ax.tick_params(labelsize=FONT)
    ax.grid(True, color="0.9", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _colors(n):
    """``n`` distinct colours without grey (grey means a baseline, "other" or no group): tab10 up to
    9, tab20 up to 18 (its dark shades first, then the light ones), else evenly spaced in turbo."""
    from matplotlib import colormaps

    hues = [0, 1, 2, 3, 4, 5, 6, 8, 9]  # tab10 / tab20 pairs without the grey one (7)
    if n <= len(hues):
        return [colormaps["tab10"](i) for i in hues[:n]]
    if n <= 2 * len(hues):
        cmap = colormaps["tab20"]
        return [cmap(2 * i) for i in hues] + [cmap(2 * i + 1) for i in hues[:n - len(hues)]]
    return [colormaps["turbo"](x) for x in np.linspace(0.05, 0.95, n)]


def png_bytes(fig, dpi=110):
    """The PNG of ``fig`` at ``dpi`` as bytes (for an inline ``data:`` image)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_png(fig, path, dpi=110):
    """Write ``fig`` as a PNG at ``path`` atomically (a temporary file renamed on success); return ``path``."""
    from ..fileio import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


# ------------------------------------------------------------------------------ training
def _metric_pair(history):
    """The first metric of a Keras history that is not a loss nor the learning rate, e.g. ``accuracy``."""
    for key in history:
        if key.startswith("val_") or key.endswith("loss") or key in ("lr", "learning_rate"):
            continue
        return key
    return None


def training_curves(histories, title=""):
    """Loss per epoch of one or several runs, and their first other metric when they have one.

    histories : ``{run_label: {"loss": [...], "val_loss": [...], "accuracy": [...], ...}}``, a Keras
        history per run (one value an epoch, epoch 1 first). The left panel holds the losses, the
        right one (when some run records a metric besides the loss) that metric, e.g. accuracy.
        Train is solid, validation dashed, one colour a run.
    Returns a Figure 10 in wide (6 in with one panel).
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    histories = {str(label): dict(h) for label, h in histories.items() if h}
    if not histories:
        raise DataMismatch("training_curves: no history given: expected {run: {'loss': [...], ...}}")
    metric = next((m for m in (_metric_pair(h) for h in histories.values()) if m), None)
    panels = [("loss", "loss")] + ([(metric, metric.replace("_", " "))] if metric else [])
    fig = _figure(WIDE if metric else 6.0, 4.0)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    colors = _colors(len(histories))
    several = len(histories) > 1
    n_epochs = max(len(v) for h in histories.values() for v in h.values())
    marks = n_epochs <= 15  # markers on short runs (one epoch draws no line)
    for ax, (key, name) in zip(axes, panels):
        for color, (label, history) in zip(colors, histories.items()):
            for prefix, style, marker in (("", "-", "o"), ("val_", "--", "s")):
                values = history.get(prefix + key)
                if not values:
                    continue
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, linestyle=style, color=color, linewidth=1.6,
                        marker=marker if marks else None, markersize=3.5,
                        label=f"{label} {'validation' if prefix else 'train'}")
        ax.set_xlabel("epoch", fontsize=FONT)
        ax.set_ylabel(name, fontsize=FONT)
        ax.set_xlim(0.5, n_epochs + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        _style(ax)
    has_val = any(h.get("val_loss") for h in histories.values())
    style = "0.2" if several else colors[0]
    handles = [Line2D([], [], color=style, linestyle="-", marker="o" if marks else None, markersize=3.5,
                      label="train")]
    handles += [Line2D([], [], color=style, linestyle="--", marker="s" if marks else None, markersize=3.5,
                       label="validation")] if has_val else []
    if several:
        # one entry a run (its colour), then the line styles, outside on the right
        runs = [Line2D([], [], color=c, linewidth=2, label=label) for c, label in zip(colors, histories)]
        fig.legend(handles=runs + handles, loc="outside right upper", fontsize=LEGEND_FONT, frameon=False)
    else:
        axes[0].legend(handles=handles, loc="best", fontsize=LEGEND_FONT, frameon=False)
    if title:
        fig.suptitle(title, fontsize=TITLE_FONT)
    return fig


# ------------------------------------------------------------------------------ classification
def _names_note(names, limit=4):
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def roc_pr_curves(y_true, scores, labels=None, max_classes=12, title=""):
    """Per-class ROC and precision-recall curves (one-vs-rest) with their micro average.

    y_true : (n, c) 0/1 indicators (one-hot for multiclass); scores : (n, c) scores, higher meaning
        more likely; labels : c class names (default "0" .. "c-1").
    A class without both positive and negative items has no curve and is named in the title.
    When more than ``max_classes`` classes remain, the ``max_classes`` with the most positives are
    drawn ("k of c classes shown"). Left: ROC, legend ``label (AUC 0.87)`` and the chance diagonal;
    right: PR, legend ``label (AP 0.54)`` (average precision), each class's prevalence dotted in its
    colour (with more than 5 classes, only the micro prevalence, grey). The micro average (every
    (item, class) pair of the classes that have curves, black, thicker) is drawn with two or more
    such classes. Curves come from ``sklearn.metrics``.
    Returns a Figure 10 in wide.
    """
    from sklearn.metrics import auc as sk_auc
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_curve

    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim == 1 and s.ndim == 1:
        y, s = y[:, None], s[:, None]
    if s.ndim != 2 or y.shape != s.shape:
        raise DataMismatch(f"roc_pr_curves: y_true has shape {y.shape} and scores {s.shape}: expected both "
                           f"(n_items, n_classes)")
    y = y > 0
    c = s.shape[1]
    labels = [str(x) for x in labels] if labels is not None else [str(j) for j in range(c)]
    if len(labels) != c:
        raise DataMismatch(f"roc_pr_curves: {len(labels)} labels for {c} score columns")
    positives = y.sum(axis=0)
    usable = [j for j in range(c) if 0 < positives[j] < len(y)]
    skipped = [labels[j] for j in range(c) if j not in usable]
    # most positives first (ties: column order), then drawn in column order
    shown = sorted(sorted(usable, key=lambda j: (-positives[j], j))[:max_classes])
    notes = []
    if len(shown) < len(usable):
        notes.append(f"{len(shown)} of {len(usable)} classes shown (most positives)")
    if skipped:
        notes.append(f"no curve for {_names_note(skipped)} (no positive or no negative item)")

    fig = _figure(WIDE, 5.4 if len(shown) > 6 else 4.8)
    ax_roc, ax_pr = fig.subplots(1, 2)
    colors = _colors(len(shown))
    per_class_prevalence = len(shown) <= 5
    for color, j in zip(colors, shown):
        fpr, tpr, _ = roc_curve(y[:, j], s[:, j])
        ax_roc.plot(fpr, tpr, color=color, linewidth=1.3, label=f"{labels[j]} (AUC {sk_auc(fpr, tpr):.2f})")
        prec, rec, _ = precision_recall_curve(y[:, j], s[:, j])
        ap = average_precision_score(y[:, j], s[:, j])
        ax_pr.step(rec, prec, where="post", color=color, linewidth=1.3, label=f"{labels[j]} (AP {ap:.2f})")
        if per_class_prevalence:
            ax_pr.axhline(positives[j] / len(y), color=color, linestyle=":", linewidth=1.0)
    if len(usable) >= 2:
        # over every class with a curve, also those not drawn (then said in the legend)
        micro_name = "micro-average" + (f" of all {len(usable)}" if len(shown) < len(usable) else "")
        yt, st = y[:, usable].ravel(), s[:, usable].ravel()
        fpr, tpr, _ = roc_curve(yt, st)
        ax_roc.plot(fpr, tpr, color="black", linewidth=2.4, label=f"{micro_name} (AUC {sk_auc(fpr, tpr):.2f})")
        prec, rec, _ = precision_recall_curve(yt, st)
        ax_pr.step(rec, prec, where="post", color="black", linewidth=2.4,
                   label=f"{micro_name} (AP {average_precision_score(yt, st):.2f})")
    if usable and not per_class_prevalence:
        micro = positives[usable].sum() / (len(y) * len(usable))
        ax_pr.axhline(micro, color="0.5", linestyle=":", linewidth=1.2, label=f"chance (prevalence {micro:.2f})")
    ax_roc.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1.0, label="chance")

    ax_roc.set_xlabel("false positive rate", fontsize=FONT)
    ax_roc.set_ylabel("true positive rate", fontsize=FONT)
    ax_roc.set_title("ROC", fontsize=TITLE_FONT - 1)
    ax_pr.set_xlabel("recall", fontsize=FONT)
    ax_pr.set_ylabel("precision", fontsize=FONT)
    ax_pr.set_title("precision-recall" + (" (dotted: prevalence)" if per_class_prevalence and shown else ""),
                    fontsize=TITLE_FONT - 1)
    for ax in (ax_roc, ax_pr):
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.02)
        ax.set_aspect("equal")
        _style(ax)
        if ax.get_legend_handles_labels()[0]:
            # below the axes: the curves fill the upper left (ROC) and upper right (PR)
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=LEGEND_FONT,
                      frameon=False)
    head = [title] if title else []
    if notes:
        head.append("; ".join(notes))
    if head:
        fig.suptitle("\n".join(head), fontsize=TITLE_FONT if title else FONT)
    return fig


def confusion_figure(matrix, labels=None, title=""):
    """A confusion-matrix heat map of counts (rows: true class, columns: predicted), each cell
    written when there are at most 30 classes.

    matrix : (c, c) counts; labels : c class names (default "0" .. "c-1").
    Returns a Figure between 4.6 and 11.8 in wide, growing with c.
    """
    cm = np.asarray(matrix)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise DataMismatch(f"confusion_figure: matrix has shape {cm.shape}: expected (c, c)")
    c = cm.shape[0]
    labels = [str(x) for x in labels] if labels is not None else [str(i) for i in range(c)]
    if len(labels) != c:
        raise DataMismatch(f"confusion_figure: {len(labels)} labels for a {c} x {c} matrix")
    size = min(11.0, max(3.8, 0.45 * c + 2.4))
    font = FONT if c <= 12 else max(5, FONT - (c - 12) // 6)
    cell_font = font + 1 if c <= 6 else font - 1
    fig = _figure(size + 0.8, size * 0.9)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(cm, cmap="Blues", vmin=0)
    bar = fig.colorbar(im, ax=ax, shrink=0.8, aspect=30, pad=0.03)
    bar.ax.tick_params(labelsize=font)
    bar.set_label("items", fontsize=font)
    ax.set_xticks(range(c), labels=labels, rotation=45 if c > 4 else 0, ha="right" if c > 4 else "center",
                  rotation_mode="anchor", fontsize=font)
    ax.set_yticks(range(c), labels=labels, fontsize=font)
    ax.set_xlabel("predicted class", fontsize=FONT)
    ax.set_ylabel("true class", fontsize=FONT)
    if title:
        ax.set_title(title, fontsize=FONT + 1)
    if c <= 30:
        top = cm.max() if cm.size else 0
        for i in range(c):
            for j in range(c):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=cell_font,
                        color="white" if top and cm[i, j] > top / 2 else "black")
    return fig


# ------------------------------------------------------------------------------ recommendation
def ranking_curves_figure(curves, title=""):
    """MAP@k (left) and precision@k (right) over the cut-off k, the model beside its baselines.

    curves : as :func:`tartarus.report.ranking.ranking_curves` returns it: ``{"k": [...], "model":
        {"map_at_k": [...], "precision": [...]}, "random": {...}, "popularity": {...}, "n_users": n}``
        (optional ``"model_id"`` names the model's line, ``"map_k"`` marks the evaluation's cut-off).
    Or a list of such dicts, one a model on the same users and cut-offs (the comparison page): each
    model a colour, the baselines the first's.
    The model is solid (colour), the baselines dashed in greys; the k axis is logarithmic when k
    spans more than two decades. Returns a Figure 10 in wide.
    """
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    models = list(curves) if isinstance(curves, (list, tuple)) else [curves]
    curves = models[0]
    ks = np.asarray(curves["k"], dtype=float)
    if ks.ndim != 1 or len(ks) == 0:
        raise DataMismatch(f"ranking_curves_figure: curves['k'] is {curves.get('k')!r}: expected cut-offs")
    for other in models[1:]:
        if list(other["k"]) != list(curves["k"]) or other.get("n_users") != curves.get("n_users"):
            raise DataMismatch(f"ranking_curves_figure: {other.get('model_id')} is ranked for {other.get('n_users')} "
                               f"users at k = {list(other['k'])}, {curves.get('model_id')} for "
                               f"{curves.get('n_users')} at k = {list(curves['k'])}: expected the same users and cut-offs")
    colors = [MODEL_COLOR] if len(models) == 1 else _colors(len(models))
    series = [(m["model"], str(m.get("model_id") or "model"),
               {"color": color, "linestyle": "-", "marker": "o", "linewidth": 2.0}) for m, color in zip(models, colors)]
    series += [(curves[name], name, {**BASELINE_STYLES[name], "linewidth": 1.4})
               for name in BASELINE_STYLES if name in curves]
    fig = _figure(WIDE, 4.2)
    axes = fig.subplots(1, 2)
    log = ks.max() / ks.min() > 100
    map_k = curves.get("map_k")
    for ax, key, name in zip(axes, ("map_at_k", "precision"), ("MAP@k", "precision@k")):
        for source, label, style in series:
            values = source[key]
            if len(values) != len(ks):
                raise DataMismatch(f"ranking_curves_figure: {label} has {len(values)} {key} values for "
                                   f"{len(ks)} cut-offs")
            ax.plot(ks, values, label=label, markersize=4, **style)
        if map_k is not None and ks.min() <= map_k <= ks.max():
            ax.axvline(map_k, color="0.7", linestyle=":", linewidth=1.0)
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(FixedLocator(ks))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_major_formatter(ScalarFormatter())
        elif len(ks) <= 12:
            ax.set_xticks(ks)
            ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.set_xlabel("cut-off k (items recommended)", fontsize=FONT)
        ax.set_ylabel(name, fontsize=FONT)
        ax.set_ylim(bottom=0)
        _style(ax)
    ax = axes[0]
    ax.legend(loc="best", fontsize=LEGEND_FONT, frameon=False)
    head = [title] if title else []
    notes = [f"{curves['n_users']} users with a held-out item"] if curves.get("n_users") is not None else []
    if map_k is not None and ks.min() <= map_k <= ks.max():
        notes.append(f"dotted: k = {map_k} (evaluating.map_k)")
    elif map_k is not None and map_k > ks.max():
        # ranking every item: MAP@map_k is the value at the last k
        notes.append(f"MAP@{map_k} = MAP@{ks.max():g} ({curves.get('n_items', f'{ks.max():g}')} items)")
    note = "; ".join(notes)
    if note:
        head.append(note)
    if head:
        fig.suptitle("\n".join(head), fontsize=TITLE_FONT if title else FONT)
    return fig


# ------------------------------------------------------------------------------ embedding
def embedding_map(points, groups, title="", names=None, max_groups=18):
    """Items as 2-D points (a projection of a layer's outputs), one colour a group.

    points : (n, 2); groups : (n,) group names, e.g. each item's class or top tag (``"(none)"``
        drawn grey). With more than ``max_groups`` groups the largest ``max_groups - 1`` keep a
        colour and the rest are drawn grey as "other". The legend (outside, right) lists the groups
        by size with their counts. names : (n,) item ids, written beside the points when n <= 40.
    Projection axes have no unit: no ticks. Returns a Figure about 8.5 in wide.
    """
    pts = np.asarray(points, dtype=np.float64)
    groups = [str(g) for g in groups]
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise DataMismatch(f"embedding_map: points has shape {pts.shape}: expected (n, 2)")
    if len(groups) != len(pts):
        raise DataMismatch(f"embedding_map: {len(groups)} groups for {len(pts)} points")
    if names is not None and len(names) != len(pts):
        raise DataMismatch(f"embedding_map: {len(names)} names for {len(pts)} points")
    counts = {}
    for g in groups:
        counts[g] = counts.get(g, 0) + 1
    order = sorted((g for g in counts if g != NO_GROUP), key=lambda g: (-counts[g], g))
    coloured = order if len(order) <= max_groups else order[:max_groups - 1]
    rest = [g for g in order if g not in set(coloured)]
    colors = dict(zip(coloured, _colors(len(coloured))))

    n = len(pts)
    size = 40 if n <= 100 else 16 if n <= 1000 else 5
    fig = _figure(8.5, 6.0)
    ax = fig.add_subplot(1, 1, 1)
    group_of = np.asarray(groups, dtype=object)
    grey = [(f"other ({len(rest)} groups, {sum(counts[g] for g in rest)})", np.isin(group_of, rest))] if rest else []
    if NO_GROUP in counts:
        grey.append((f"{NO_GROUP} ({counts[NO_GROUP]})", group_of == NO_GROUP))
    for label, mask in grey:  # grey under the coloured groups
        ax.scatter(pts[mask, 0], pts[mask, 1], s=size, color="0.75", alpha=0.7, edgecolors="none", label=label)
    for g in coloured:
        mask = group_of == g
        ax.scatter(pts[mask, 0], pts[mask, 1], s=size, color=colors[g], alpha=0.85, edgecolors="white",
                   linewidths=0.4 if n <= 1000 else 0.0, label=f"{g} ({counts[g]})")
    if names is not None and n <= 40:
        for (x, y), name in zip(pts, names):
            ax.annotate(str(name), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=LEGEND_FONT - 1,
                        color="0.25")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("0.8")
    if counts:
        handles, texts = ax.get_legend_handles_labels()
        first = len(grey)  # the coloured groups first in the legend, by size, then the grey ones
        fig.legend(handles[first:] + handles[:first], texts[first:] + texts[:first], loc="outside right upper",
                   fontsize=LEGEND_FONT, frameon=False, markerscale=max(1.0, 30 / size), title=f"{n} items",
                   title_fontsize=LEGEND_FONT)
    if title:
        ax.set_title(title, fontsize=TITLE_FONT)
    return fig
