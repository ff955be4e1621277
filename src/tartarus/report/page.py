"""HTML for reports: one self-contained static page, figures inline as PNG data, no script, no network.

Plain functions from already computed facts and figures to HTML text; nothing here reads files or
trains anything (see ``report/__init__.py`` for the composition).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math

STYLE = """
body { font: 15px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1d1d1f;
       margin: 0 auto; max-width: 1180px; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 36px 0 10px; border-bottom: 1px solid #ddd;
     padding-bottom: 4px; } h3 { font-size: 16px; margin: 22px 0 8px; }
.meta { color: #555; margin: 0 0 8px; } nav a { margin-right: 14px; color: #0a58ca; text-decoration: none; }
table { border-collapse: collapse; margin: 6px 0 14px; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; text-align: right; border-bottom: 1px solid #eee; }
th { border-bottom: 1.5px solid #444; font-weight: 600; } th:first-child, td:first-child { text-align: left; }
td.text, th.text { text-align: left; } td.best { font-weight: 700; }
figure { margin: 8px 0 18px; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 13px; margin-top: 4px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 12px 24px; }
.pair { display: grid; grid-template-columns: 2fr 1fr; gap: 12px 24px; align-items: start; }
.row { display: flex; flex-wrap: wrap; gap: 8px 40px; align-items: flex-start; }
figure.narrow img { max-width: 520px; } figure.medium img { max-width: 780px; }
pre { background: #f6f8fa; padding: 10px 12px; overflow-x: auto; font-size: 13px; }
details summary { cursor: pointer; color: #0a58ca; } .note { color: #8a5300; } .scroll { max-height: 460px;
overflow-y: auto; display: inline-block; } code { background: #f3f3f3; padding: 0 3px; }
footer { margin-top: 40px; color: #888; font-size: 12px; }
"""


def esc(text):
    return html.escape(str(text), quote=True)


def fmt(value, digits=3):
    """A table cell: floats to ``digits`` decimals, None/NaN as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return esc(value)


def figure_html(fig_or_png, alt, caption="", dpi=110, size=""):
    """An ``<figure>`` with the image inline (``data:image/png;base64``); accepts a Figure or PNG bytes.
    size : "" (the page's width at most), "medium" or "narrow" (capped, for square figures)."""
    png = fig_or_png
    if not isinstance(png, (bytes, bytearray)):
        from .figures import png_bytes
        png = png_bytes(fig_or_png, dpi=dpi)
    data = base64.b64encode(png).decode("ascii")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    css = f' class="{size}"' if size else ""
    return f'<figure{css}><img src="data:image/png;base64,{data}" alt="{esc(alt)}">{cap}</figure>'


def table_html(columns, rows, best=None, text_columns=(), css_class=""):
    """A table; ``rows`` of cells (numbers formatted by :func:`fmt`); ``best`` a set of (row, column)
    positions shown bold; ``text_columns`` the column indices aligned left."""
    best = best or set()
    head = "".join(f'<th class="{"text" if j in text_columns else ""}">{esc(c)}</th>' for j, c in enumerate(columns))
    body = []
    for i, row in enumerate(rows):
        cells = []
        for j, cell in enumerate(row):
            classes = " ".join(c for c in ("text" if j in text_columns else "", "best" if (i, j) in best else "") if c)
            cells.append(f'<td class="{classes}">{fmt(cell)}</td>' if classes else f"<td>{fmt(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    wrap = f' class="{css_class}"' if css_class else ""
    return f"<div{wrap}><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"


def best_cells(rows, first_value_column=1):
    """The (row, column) of each row's highest number from ``first_value_column`` on (ties all bold);
    our metrics are all higher-is-better."""
    best = set()
    for i, row in enumerate(rows):
        values = [(j, v) for j, v in enumerate(row) if j >= first_value_column and isinstance(v, float)
                  and not math.isnan(v)]
        if len(values) > 1:
            top = max(v for _, v in values)
            best.update((i, j) for j, v in values if v == top)
    return best


def metric_rows(result):
    """``[(label, value)]`` of a results dict's headline metrics, in the papers' order.

    Classification: accuracy, macro P/R/F1, micro F1, ROC-AUC, PR-AUC, MAP@k, P@k. Recommendation
    (the model's report or a baseline's): MAP@k, then P, nDCG and ADiv at each cut-off, ROC-AUC, PR-AUC.
    """
    k = result.get("k", "k")
    if result.get("evaluation") == "recommendation" or "at" in result:
        rows = [(f"MAP@{k}", result.get("map_at_k"))]
        for key, label in (("precision", "P"), ("ndcg", "nDCG"), ("adiv", "ADiv")):
            rows += [(f"{label}@{cut}", values.get(key)) for cut, values in (result.get("at") or {}).items()]
        rows += [(name, result[key]) for key, name in (("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC")) if key in result]
        return rows
    rows = [(label, result[key]) for key, label in
            (("accuracy", "accuracy"), ("macro_precision", "macro precision"), ("macro_recall", "macro recall"),
             ("macro_f1", "macro F1"), ("micro_f1", "micro F1"), ("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC"),
             ("map_at_k", f"MAP@{k}")) if key in result]
    rows += [(f"P@{kk}", v) for kk, v in (result.get("precision_at") or {}).items()]
    return rows


def config_html(experiment):
    """The resolved experiment, section by section, as readable TOML-like text."""
    lines = []
    scalars = {k: v for k, v in experiment.items() if not isinstance(v, dict)}
    for key, value in scalars.items():
        lines.append(f"{key} = {json.dumps(value)}")
    for section, values in experiment.items():
        if isinstance(values, dict):
            lines.append(f"\n[{section}]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    return f"<pre>{esc(chr(10).join(lines).strip())}</pre>"


def page(title, header, sections, generator=""):
    """The whole document: ``header`` HTML, then ``sections`` [(anchor, heading, body HTML)], with a
    table of contents; ``generator`` goes in the footer."""
    nav = " ".join(f'<a href="#{esc(anchor)}">{esc(heading)}</a>' for anchor, heading, _ in sections)
    body = "".join(f'<section id="{esc(anchor)}"><h2>{esc(heading)}</h2>{content}</section>'
                   for anchor, heading, content in sections)
    stamp = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{esc(title)}</title>"
            f"<style>{STYLE}</style></head><body>{header}<nav>{nav}</nav>{body}"
            f"<footer>{esc(generator)} · {esc(stamp)}</footer></body></html>\n")
