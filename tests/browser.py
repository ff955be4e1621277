"""Opening a generated page in a real browser: headless Chromium driven by Selenium, for the tests.

Debian's ``chromium`` and ``chromium-driver`` packages (``make browser`` installs them) and the
``selenium`` package (the ``test`` extra) are needed; :func:`chromium_or_skip` skips a test where one is
missing. Nothing is downloaded at run time: Selenium is handed the system's chromedriver and
Chromium binaries, so its selenium-manager (which would fetch drivers) never runs.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

# the longest page a screenshot covers (px); a longer one is cut there
MAX_SCREENSHOT_HEIGHT = 16000
# the first screen's height (px): the viewport the page loads in
FIRST_SCREEN = 800
# how long a page and its images may take to load (s)
LOAD_TIMEOUT = 30


@dataclass(frozen=True)
class PageCheck:
    """What a browser saw of a page.

    title : the document's title.
    console_errors : the browser console's SEVERE entries, in order: script errors, uncaught
        exceptions and resources that failed to load ("Failed to load resource: ...").
    broken_images : the ``src`` of each ``<img>`` that did not load (not complete, or naturalWidth 0);
        data: URLs are cut to their first 60 characters.
    n_images : how many ``<img>`` elements the page has.
    page_height : the document's height (px) at ``width``; at least :data:`FIRST_SCREEN`.
    """

    title: str
    console_errors: list[str]
    broken_images: list[str]
    n_images: int
    page_height: int


def browser_paths():
    """``(chromium, chromedriver)``: the paths of the system's binaries, each None where absent."""
    return shutil.which("chromium"), shutil.which("chromedriver")


def chromium_or_skip():
    """Skip the calling test, with the reason, unless headless Chromium can be driven here: the
    ``chromium`` and ``chromedriver`` binaries on PATH and the ``selenium`` package installed.
    Returns ``(chromium, chromedriver)`` paths otherwise."""
    chromium, driver = browser_paths()
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", driver)) if path is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not found on PATH: `make browser` installs Debian's chromium and "
                    f"chromium-driver packages")
    if importlib.util.find_spec("selenium") is None:
        pytest.skip("the selenium package is not installed: pip install -e '.[test]' (or `make install`)")
    return chromium, driver


# the <img> elements that did not load, and the document's height
_IMAGES = """
const imgs = Array.from(document.images);
const broken = imgs.filter(i => !i.complete || i.naturalWidth === 0)
                   .map(i => i.getAttribute('src') || i.currentSrc || '(no src)');
return [imgs.length, broken];
"""
_HEIGHT = ("return Math.max(document.body ? document.body.scrollHeight : 0, "
           "document.documentElement.scrollHeight);")
_IMAGES_SETTLED = "return Array.from(document.images).every(i => i.complete);"


def _short(src, n=60):
    return src[:n] + "..." if src.startswith("data:") and len(src) > n else src


def _viewport(driver, width, height):
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": int(width), "height": int(height), "deviceScaleFactor": 1, "mobile": False})


def check_page(html_path, screenshot_path, width=1280):
    """Open ``html_path`` (a file) in headless Chromium at ``width`` px, wait for it to load, and
    save a full-page PNG screenshot to ``screenshot_path`` (its folder made as needed): ``width`` px
    wide and as tall as the document, at most :data:`MAX_SCREENSHOT_HEIGHT` px.

    Returns a :class:`PageCheck`. Skips the test where Chromium cannot be driven (:func:`chromium_or_skip`).
    """
    chromium, driver_path = chromium_or_skip()
    from selenium import webdriver
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # --no-sandbox: Chromium's sandbox refuses to run as root (CI containers); --disable-gpu: none here
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-extensions",
                "--no-first-run", "--hide-scrollbars", f"--window-size={width},{FIRST_SCREEN}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=driver_path)  # a given path: no selenium-manager
    url = Path(html_path).resolve().as_uri()
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(LOAD_TIMEOUT)
        # the viewport itself (a window's size includes the browser's frame), scale 1: 1 CSS px = 1 image px
        _viewport(driver, width, FIRST_SCREEN)
        driver.get(url)  # returns once the load event has fired: images included
        height = int(driver.execute_script(_HEIGHT))
        _viewport(driver, width, min(max(height, 1), MAX_SCREENSHOT_HEIGHT))
        # images below the first screen with loading="lazy" start now: let them finish or fail
        WebDriverWait(driver, LOAD_TIMEOUT).until(lambda d: d.execute_script(_IMAGES_SETTLED))
        n_images, broken = driver.execute_script(_IMAGES)
        screenshot_path = Path(screenshot_path)
        screenshot_path.parent.mkdir(parents=True, exist_ok=True)
        if not driver.save_screenshot(str(screenshot_path)):
            raise OSError(f"{screenshot_path}: Chromium did not save the screenshot of {url}")
        errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        return PageCheck(title=driver.title, console_errors=errors, broken_images=[_short(s) for s in broken],
                         n_images=int(n_images), page_height=height)
    finally:
        driver.quit()
