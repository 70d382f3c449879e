"""Open an HTML page in a headless Chromium as a reader would, and report what it saw.

Playwright drives the system's Chromium (``executable_path``: no browser download, nothing
fetched), for the tests only. The view records console errors, uncaught exceptions, failed loads
and every request leaving the file, measures whether each named table and figure is visible with
a non-empty box (figures: their image decoded), and captures a full-page screenshot.
"""

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
BROWSER_VARIABLE = "BUZZPIPE_BROWSER"  # a path to the browser, overriding the search
LOCAL_SCHEMES = ("data:", "file:", "about:")


class BrowserError(RuntimeError):
    """The browser could not be started or stopped answering."""


@dataclass
class BrowserView:
    """What the headless browser saw of a page."""

    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # URLs other than data:, file:, about:
    elements: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> visibility facts
    screenshot: bytes = b""
    page_size: tuple[int, int] = (0, 0)

    def invisible(self) -> list[str]:
        """Ids of the elements that are missing or not visible."""
        return [key for key, facts in self.elements.items() if not facts.get("visible")]


def find_browser() -> str | None:
    """The path of a Chromium-family browser, or None where none is installed."""
    chosen = os.environ.get(BROWSER_VARIABLE)
    if chosen:
        return chosen if Path(chosen).exists() else shutil.which(chosen)
    for name in BROWSER_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


_VISIBILITY_SCRIPT = """
(ids) => {
  const facts = {};
  for (const id of ids) {
    const element = document.getElementById(id);
    if (!element) { facts[id] = {present: false, visible: false}; continue; }
    element.scrollIntoView();
    const box = element.getBoundingClientRect();
    const style = getComputedStyle(element);
    const entry = {present: true, width: box.width, height: box.height,
                   display: style.display, visibility: style.visibility};
    let visible = box.width > 0 && box.height > 0 && style.display !== 'none'
                  && style.visibility !== 'hidden' && parseFloat(style.opacity) > 0;
    const image = element.tagName === 'FIGURE' ? element.querySelector('img') : null;
    if (element.tagName === 'FIGURE') {
      entry.image_decoded = !!image && image.complete && image.naturalWidth > 0;
      entry.image_width = image ? image.getBoundingClientRect().width : 0;
      visible = visible && entry.image_decoded && entry.image_width > 0;
    }
    if (element.tagName === 'TABLE') {
      entry.rows = element.tBodies.length ? element.tBodies[0].rows.length : 0;
      visible = visible && entry.rows > 0;
    }
    entry.visible = visible;
    facts[id] = entry;
  }
  window.scrollTo(0, 0);
  return facts;
}
"""
_PAGE_SIZE_SCRIPT = (
    "() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
)


def view_page(
    path: str | os.PathLike,
    element_ids: list[str],
    *,
    browser: str | None = None,
    timeout: float = 60.0,
) -> BrowserView:
    """Load a local HTML file headless and return what a reader would see of it."""
    from playwright.sync_api import Error, sync_playwright

    executable = browser or find_browser()
    if executable is None:
        raise BrowserError("no Chromium-family browser found")
    view = BrowserView()
    milliseconds = timeout * 1000
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(
                executable_path=executable,
                # containers run as root, where the sandbox cannot start
                args=["--no-sandbox", "--disable-gpu", "--hide-scrollbars"],
                timeout=milliseconds,
            )
        except Error as error:
            message = error.message.splitlines()[0]
            raise BrowserError(f"the browser did not start: {message}") from None
        try:
            page = chromium.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(milliseconds)

            def on_console(message: Any) -> None:
                if message.type in ("error", "assert"):
                    view.console_errors.append(f"console.{message.type}: {message.text}")

            def on_request(request: Any) -> None:
                if not request.url.startswith(LOCAL_SCHEMES):
                    view.requests.append(request.url)

            page.on("console", on_console)
            page.on("pageerror", lambda error: view.console_errors.append(f"uncaught: {error}"))
            page.on(
                "requestfailed",
                lambda request: view.console_errors.append(
                    f"load failed: {request.url[:80]} ({request.failure})"
                ),
            )
            page.on("request", on_request)
            page.goto(Path(path).resolve().as_uri(), wait_until="load")
            view.elements = page.evaluate(_VISIBILITY_SCRIPT, list(element_ids))
            width, height = page.evaluate(_PAGE_SIZE_SCRIPT)
            view.page_size = (int(width), int(height))
            view.screenshot = page.screenshot(full_page=True, type="png")
        except Error as error:
            raise BrowserError(f"the browser failed: {error.message.splitlines()[0]}") from None
        finally:
            chromium.close()
    return view
