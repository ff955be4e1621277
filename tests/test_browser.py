"""The headless-Chromium page check (tests/browser.py) on hand-written pages: it sees what it must.

Screenshots go to ``$TARTARUS_SCREENSHOTS`` when set (to keep them, e.g. in CI), else to the test's
temporary folder. Every test skips, naming ``make browser``, where Chromium is not installed.
"""

import base64
import io
import os
import struct
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from tests.browser import check_page, chromium_or_skip


@pytest.fixture
def shots(tmp_path):
    chromium_or_skip()
    folder = os.environ.get("TARTARUS_SCREENSHOTS")
    return Path(folder) if folder else tmp_path


def png_size(path):
    """``(width, height)`` in px from a PNG file's IHDR chunk."""
    head = Path(path).read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def figure_png(width_in=4, height_in=3, dpi=50):
    """A matplotlib figure (bare Figure, Agg canvas) as PNG bytes: width_in*dpi x height_in*dpi px."""
    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    fig.add_subplot().plot([0, 1, 2], [0, 1, 0])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def page(body, title="t"):
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>{body}</body></html>"


def test_good_page_passes(tmp_path, shots):
    data = base64.b64encode(figure_png()).decode("ascii")
    html = tmp_path / "good.html"
    # a 3000 px tall page: the screenshot must cover all of it, not the first screen
    html.write_text(page(f"<h1>report</h1><img alt='curve' src='data:image/png;base64,{data}'>"
                         f"<div style='height:3000px'></div><p>end</p>", title="a good page"))
    check = check_page(html, shots / "good.png", width=900)
    assert check.title == "a good page"
    assert check.n_images == 1 and check.broken_images == [] and check.console_errors == []
    assert check.page_height > 3000
    assert png_size(shots / "good.png") == (900, check.page_height)


def test_missing_image_is_reported(tmp_path, shots):
    data = base64.b64encode(figure_png()).decode("ascii")
    html = tmp_path / "missing.html"
    html.write_text(page(f"<img src='data:image/png;base64,{data}'><img src='nope.png'>"))
    check = check_page(html, shots / "missing.png")
    assert check.n_images == 2
    assert check.broken_images == ["nope.png"]
    # the failed load is in the console too
    assert len(check.console_errors) == 1 and "nope.png" in check.console_errors[0], check.console_errors
    assert "Failed to load resource" in check.console_errors[0]


def test_script_errors_are_reported(tmp_path, shots):
    html = tmp_path / "errors.html"
    html.write_text(page("<p>text</p><script>console.error('first problem')</script>"
                         "<script>throw new Error('second problem')</script>"))
    check = check_page(html, shots / "errors.png")
    assert check.n_images == 0 and check.broken_images == []
    assert len(check.console_errors) == 2, check.console_errors
    assert "first problem" in check.console_errors[0]
    assert "Uncaught Error: second problem" in check.console_errors[1]
    assert png_size(shots / "errors.png")[0] == 1280


def test_warnings_are_not_errors(tmp_path, shots):
    html = tmp_path / "warn.html"
    html.write_text(page("<script>console.warn('just a warning'); console.log('a note')</script>"))
    assert check_page(html, shots / "warn.png").console_errors == []
