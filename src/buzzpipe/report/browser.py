"""Open the HTML report in a headless Chromium as a reader would, and report what it saw.

Chromium is driven over its DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages ending in NUL on file descriptors 3 and 4), so no WebSocket client or browser-driver
package is needed. The view records console errors, uncaught exceptions, failed loads and every
network request, measures whether each named table and figure is visible with a non-empty box
(figures: their image decoded), and captures a full-page screenshot.
"""

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
BROWSER_VARIABLE = "BUZZPIPE_BROWSER"  # a path to the browser, overriding the search


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
  return JSON.stringify(facts);
}
"""


class _DevToolsPipe:
    """A DevTools protocol session over Chromium's debugging pipe."""

    def __init__(self, browser: str, timeout: float) -> None:
        self.timeout = timeout
        self.profile = tempfile.TemporaryDirectory(prefix="buzzpipe-browser-")
        to_browser_read, to_browser_write = os.pipe()
        from_browser_read, from_browser_write = os.pipe()
        # Move the child's ends above 10 (closed at exec) so that placing them on 3 and 4 cannot
        # clobber them; the copies on 3 and 4 made by dup2 are the ones the browser inherits.
        child_read = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD_CLOEXEC, 10)
        child_write = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_browser_read)
        os.close(from_browser_write)

        def place_pipes() -> None:  # runs in the child before exec
            os.dup2(child_read, 3)
            os.dup2(child_write, 4)

        arguments = [
            browser,
            "--headless",
            "--no-sandbox",  # containers run as root, where the sandbox cannot start
            "--disable-gpu",
            "--remote-debugging-pipe",
            f"--user-data-dir={self.profile.name}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--hide-scrollbars",
            "--mute-audio",
            "--window-size=1280,1000",
            "about:blank",
        ]
        self.log = tempfile.TemporaryFile()
        try:
            self.process = subprocess.Popen(
                arguments,
                stdin=subprocess.DEVNULL,
                stdout=self.log,
                stderr=self.log,
                # not pass_fds: it would need 3 and 4 open here; every descriptor of ours is
                # close-on-exec (PEP 446), so only the two placed pipes reach the browser
                close_fds=False,
                preexec_fn=place_pipes,
            )
        finally:
            os.close(child_read)
            os.close(child_write)
        self.writer = to_browser_write
        self.reader = from_browser_read
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and wait for its answer, keeping events that arrive meanwhile."""
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            os.write(self.writer, json.dumps(message).encode("utf-8") + b"\0")
        except BrokenPipeError:
            raise self._closed() from None
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, session: str | None = None) -> dict:
        """Wait for an event (one that came already counts)."""
        deadline = time.monotonic() + self.timeout
        for event in self.events:
            if event.get("method") == method and event.get("sessionId") == session:
                return event
        while True:
            event = self._receive(deadline)
            self.events.append(event)
            if event.get("method") == method and event.get("sessionId") == session:
                return event

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"the browser did not answer within {self.timeout:.0f} s")
            ready, _, _ = select.select([self.reader], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.reader, 1 << 20)
            if not chunk:
                raise self._closed()
            self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)

    def _closed(self) -> BrowserError:
        """The error for a browser that went away, with the end of its log."""
        self.log.seek(0)
        tail = self.log.read()[-400:].decode("utf-8", errors="replace")
        return BrowserError(f"the browser closed its pipe; its log ends: {tail!r}")

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                try:
                    os.write(self.writer, b'{"id": 999999, "method": "Browser.close"}\0')
                    self.process.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    self.process.kill()
                    self.process.wait()
        finally:
            for descriptor in (self.writer, self.reader):
                try:
                    os.close(descriptor)
                except OSError:
                    pass
            self.log.close()
            self.profile.cleanup()


def view_page(
    path: str | os.PathLike,
    element_ids: list[str],
    *,
    browser: str | None = None,
    timeout: float = 60.0,
) -> BrowserView:
    """Load a local HTML file headless and return what a reader would see of it."""
    browser = browser or find_browser()
    if browser is None:
        raise BrowserError("no Chromium-family browser found")
    session_pipe = _DevToolsPipe(browser, timeout)
    view = BrowserView()
    try:
        target = session_pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = session_pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            session_pipe.send(f"{domain}.enable", session=session)
        url = Path(path).resolve().as_uri()
        session_pipe.send("Page.navigate", {"url": url}, session=session)
        session_pipe.wait_for("Page.loadEventFired", session=session)
        facts = session_pipe.send(
            "Runtime.callFunctionOn",
            {
                "functionDeclaration": _VISIBILITY_SCRIPT,
                "executionContextId": _main_context(session_pipe, session),
                "arguments": [{"value": list(element_ids)}],
                "returnByValue": True,
                "awaitPromise": True,
            },
            session=session,
        )
        if "exceptionDetails" in facts:
            raise BrowserError(f"visibility script failed: {facts['exceptionDetails']}")
        view.elements = json.loads(facts["result"]["value"])
        metrics = session_pipe.send("Page.getLayoutMetrics", session=session)
        content = metrics.get("cssContentSize") or metrics["contentSize"]
        width, height = int(content["width"]), int(content["height"])
        view.page_size = (width, height)
        shot = session_pipe.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            },
            session=session,
        )
        view.screenshot = base64.b64decode(shot["data"])
        _collect(view, session_pipe.events, session)
    finally:
        session_pipe.close()
    return view


def _main_context(session_pipe: _DevToolsPipe, session: str) -> int:
    """The execution context of the page's main frame (the latest default context)."""
    contexts = [
        event["params"]["context"]
        for event in session_pipe.events
        if event.get("method") == "Runtime.executionContextCreated"
        and event.get("sessionId") == session
        and event["params"]["context"].get("auxData", {}).get("isDefault")
    ]
    if not contexts:
        event = session_pipe.wait_for("Runtime.executionContextCreated", session=session)
        contexts = [event["params"]["context"]]
    return contexts[-1]["id"]


def _collect(view: BrowserView, events: list[dict[str, Any]], session: str) -> None:
    """Console errors, exceptions, failed loads and outside requests among the events."""
    for event in events:
        if event.get("sessionId") != session:
            continue
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            texts = [str(arg.get("value", arg.get("description", ""))) for arg in params["args"]]
            view.console_errors.append("console.error: " + " ".join(texts))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            description = details.get("exception", {}).get("description", details.get("text"))
            view.console_errors.append(f"uncaught exception: {description}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            view.console_errors.append(f"{entry.get('source')}: {entry.get('text')}")
        elif method == "Network.loadingFailed":
            view.console_errors.append(f"load failed: {params.get('errorText')}")
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if not url.startswith(("data:", "file:", "about:")):
                view.requests.append(url)
