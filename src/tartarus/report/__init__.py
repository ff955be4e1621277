"""Reports: what trained models did, as static pages and tables.

``write_report(layout, "model_1")`` writes ``models/model_1/report.html`` (:func:`pages.model_page`);
``write_comparison(layout, ["model_1", "model_2"])`` a page of models side by side
(:func:`pages.comparison_page`); ``runs.gather_runs`` / ``runs.format_runs`` are ``tartarus results``.
Every page is one self-contained HTML file: figures inline, no script, nothing fetched.
"""

from __future__ import annotations

from ..fileio import write_text
from ..layout import DataLayout


def write_report(layout, model_id, out=None, layer=None, projection="tsne", embedding=True):
    """Write ``model_id``'s report page (default ``layout.report(model_id)``) atomically; return its path.

    layer : the embedding map's layer (index or name; default the one before the output);
    projection : ``tsne`` (default), ``pca`` or ``umap``; embedding : draw the embedding map (it runs
    the model on the test split).
    """
    from .pages import model_page

    layout = layout if isinstance(layout, DataLayout) else DataLayout(layout)
    html = model_page(layout, model_id, layer=layer, projection=projection, embedding=embedding)
    path = out or layout.report(model_id)
    write_text(path, html)
    return path


def write_comparison(layout, model_ids, out=None):
    """Write the page of ``model_ids`` side by side (default ``layout.comparison_report(model_ids)``)."""
    from .pages import comparison_page

    layout = layout if isinstance(layout, DataLayout) else DataLayout(layout)
    model_ids = list(dict.fromkeys(model_ids))
    html = comparison_page(layout, model_ids)
    path = out or layout.comparison_report(model_ids)
    write_text(path, html)
    return path
