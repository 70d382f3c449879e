"""An always-on check of the HTML report by parsing it: nothing is fetched from outside, the
contents list points at real sections, and every expected table and figure is there with content.

It needs no browser, so it runs everywhere; the tests add the check as a reader sees it (a headless
Chromium driven by Playwright, tests/browser_view.py).
"""

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser

# attributes through which a browser may fetch or navigate to a resource
URL_ATTRIBUTES = frozenset(
    {
        "src",
        "href",
        "srcset",
        "action",
        "formaction",
        "data",
        "poster",
        "background",
        "cite",
        "xlink:href",
        "ping",
        "manifest",
        "longdesc",
        "icon",
    }
)
EMBEDDING_TAGS = frozenset({"iframe", "object", "embed", "frame", "base", "portal"})
_CSS_URL = re.compile(r"url\(\s*['\"]?(?!data:|#)([^'\")\s]+)", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"@import", re.IGNORECASE)
_SVG_EXTERNAL = re.compile(
    r"(?:href|src)\s*=\s*['\"](?!data:|#)([^'\"]+)['\"]|url\(\s*['\"]?(?!data:|#)([^'\")\s]+)",
    re.IGNORECASE,
)


@dataclass
class _Found:
    tables: dict[str, int] = field(default_factory=dict)  # id -> body rows
    figures: dict[str, int] = field(default_factory=dict)  # id -> bytes of inline image
    ids: set[str] = field(default_factory=set)
    contents_links: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    has_doctype: bool = False
    has_title: bool = False


class _ReportParser(HTMLParser):
    """Collects ids, tables, figures, contents links and every URL-bearing attribute."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found = _Found()
        self.stack: list[tuple[str, str | None]] = []  # (tag, id) of open tables/figures/nav
        self.in_style = False
        self.in_title = False

    def handle_decl(self, declaration: str) -> None:
        if declaration.lower().startswith("doctype html"):
            self.found.has_doctype = True

    def handle_starttag(self, tag: str, attributes: list[tuple[str, str | None]]) -> None:
        attrs = {name.lower(): value or "" for name, value in attributes}
        element_id = attrs.get("id")
        if element_id:
            self.found.ids.add(element_id)
        if tag in EMBEDDING_TAGS:
            self.found.problems.append(f"<{tag}> element: reports embed nothing from outside")
        if tag == "link":
            self.found.problems.append(
                f"<link> element (href {attrs.get('href')!r}): styles must be inline"
            )
        for name, value in attrs.items():
            if name in URL_ATTRIBUTES or name == "style":
                self._check_url(tag, name, value)
        if tag == "table":
            self.stack.append(("table", element_id))
            if element_id:
                self.found.tables.setdefault(element_id, 0)
        elif tag == "figure":
            self.stack.append(("figure", element_id))
            if element_id:
                self.found.figures.setdefault(element_id, 0)
        elif tag == "nav":
            self.stack.append(("nav", element_id))
        elif tag == "tr" and self._inside("table") and self._in_body:
            table_id = self._innermost("table")
            if table_id:
                self.found.tables[table_id] += 1
        elif tag == "tbody":
            self._in_body = True
        elif tag == "img" and self._inside("figure"):
            figure_id = self._innermost("figure")
            source = attrs.get("src", "")
            if figure_id and source.startswith("data:"):
                self.found.figures[figure_id] += len(_data_bytes(source))
        elif tag == "a" and self._innermost("nav") == "contents":
            self.found.contents_links.append(attrs.get("href", ""))
        elif tag == "style":
            self.in_style = True
        elif tag == "title":
            self.in_title = True

    _in_body = False

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        if tag in ("table", "figure", "nav"):
            for index in range(len(self.stack) - 1, -1, -1):
                if self.stack[index][0] == tag:
                    del self.stack[index]
                    break
        if tag == "style":
            self.in_style = False
        if tag == "title":
            self.in_title = False

    def handle_data(self, data: str) -> None:
        if self.in_style:
            self._check_css(data, "<style>")
        if self.in_title and data.strip():
            self.found.has_title = True

    def _inside(self, tag: str) -> bool:
        return any(open_tag == tag for open_tag, _ in self.stack)

    def _innermost(self, tag: str) -> str | None:
        for open_tag, element_id in reversed(self.stack):
            if open_tag == tag:
                return element_id
        return None

    def _check_url(self, tag: str, name: str, value: str) -> None:
        if name == "style":
            self._check_css(value, f"<{tag} style>")
            return
        text = value.strip()
        if not text or text.startswith("#"):
            return
        if text.lower().startswith("data:"):
            if text.lower().startswith("data:image/svg+xml"):
                svg = _data_bytes(text).decode("utf-8", errors="replace")
                for match in _SVG_EXTERNAL.finditer(svg):
                    url = match.group(1) or match.group(2)
                    self.found.problems.append(f"<{tag} {name}> inline SVG refers outside: {url!r}")
            return
        self.found.problems.append(f"<{tag} {name}={text[:80]!r}>: external URL")

    def _check_css(self, css: str, where: str) -> None:
        for match in _CSS_URL.finditer(css):
            self.found.problems.append(f"{where}: url({match.group(1)!r}) is external")
        if _CSS_IMPORT.search(css):
            self.found.problems.append(f"{where}: @import fetches a style sheet")


def _data_bytes(uri: str) -> bytes:
    """The payload of a data: URI (base64 or percent-free plain text)."""
    header, _, payload = uri.partition(",")
    if header.lower().endswith(";base64"):
        try:
            return base64.b64decode(payload, validate=True)
        except ValueError:
            return b""
    return payload.encode("utf-8")


def check_report_html(
    html: str, expected_tables: Iterable[str], expected_figures: Iterable[str]
) -> list[str]:
    """Problems found in the report (empty when it passes): external URLs, missing parts."""
    parser = _ReportParser()
    parser.feed(html)
    parser.close()
    found = parser.found
    problems = list(found.problems)
    if not found.has_doctype:
        problems.append("no <!DOCTYPE html>")
    if not found.has_title:
        problems.append("no <title>")
    if not found.contents_links:
        problems.append('no contents list (<nav id="contents"> with links)')
    for link in found.contents_links:
        if not link.startswith("#") or link[1:] not in found.ids:
            problems.append(f"contents link {link!r} points at no section of the report")
    for table_id in expected_tables:
        if table_id not in found.tables:
            problems.append(f"table {table_id!r} is missing")
        elif found.tables[table_id] == 0:
            problems.append(f"table {table_id!r} has no body rows")
    for figure_id in expected_figures:
        if figure_id not in found.figures:
            problems.append(f"figure {figure_id!r} is missing")
        elif found.figures[figure_id] == 0:
            problems.append(f"figure {figure_id!r} has no inline image")
    return problems
