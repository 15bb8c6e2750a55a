"""HTML: the visible text only, read with selectolax (lexbor); nothing is ever fetched."""

from __future__ import annotations

import re
from collections.abc import Iterator

from selectolax.lexbor import LexborHTMLParser, LexborNode

from parser.extraction import Extraction
from parser.text_cleaning import clean_text, metadata_text
from schemas.parsing import MetadataValue

__all__ = ["extract_html"]

_INVISIBLE = frozenset(
    {"head", "script", "style", "template", "noscript", "iframe", "object", "embed", "title"}
)
_PARAGRAPH = 2
_LINE = 1
_BREAKS = {
    **dict.fromkeys(
        [
            "address",
            "article",
            "aside",
            "blockquote",
            "details",
            "dl",
            "fieldset",
            "figure",
            "footer",
            "form",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "header",
            "hr",
            "main",
            "nav",
            "ol",
            "p",
            "pre",
            "section",
            "table",
            "ul",
        ],
        _PARAGRAPH,
    ),
    **dict.fromkeys(
        ["br", "caption", "dd", "div", "dt", "figcaption", "li", "option", "summary", "tr"],
        _LINE,
    ),
}
_CELLS = frozenset({"td", "th"})
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")


def extract_html(text: str) -> Extraction:
    """Visible text of the body, one line per block; ``title`` and ``lang`` as metadata."""
    tree = LexborHTMLParser(clean_text(text))
    title_node = tree.css_first("title")
    title = metadata_text(title_node.text(deep=True)) if title_node is not None else ""
    lang: str | None = None
    if tree.root is not None:
        lang = metadata_text(tree.root.attributes.get("lang") or "") or None
    start = tree.body if tree.body is not None else tree.root
    body = _visible_text(start) if start is not None else ""
    metadata: dict[str, MetadataValue] = {"title": title or None, "lang": lang}
    return Extraction(parts=(body,), metadata=metadata, parser="html")


def _visible_text(start: LexborNode) -> str:
    """Walk the tree without recursion (documents may nest 100 000 deep)."""
    out = _Lines()
    stack: list[tuple[Iterator[LexborNode], int, bool]] = [
        (start.iter(include_text=True), _PARAGRAPH, False)
    ]
    while stack:
        children, closing, in_pre = stack[-1]
        node = next(children, None)
        if node is None:
            stack.pop()
            out.brk(closing)
            continue
        tag = node.tag or ""
        if tag == "-text":
            out.text(node.text_content or "", preformatted=in_pre)
            continue
        if tag.startswith("-") or tag in _INVISIBLE or _hidden(node):
            continue
        if tag in _CELLS:
            out.text(" ", preformatted=False)
        level = _BREAKS.get(tag, 0)
        out.brk(level)
        stack.append((node.iter(include_text=True), level, in_pre or tag == "pre"))
    out.brk(_PARAGRAPH)
    return out.joined()


def _hidden(node: LexborNode) -> bool:
    attributes = node.attributes
    if "hidden" in attributes:
        return True
    style = (attributes.get("style") or "").replace(" ", "").lower()
    return "display:none" in style or "visibility:hidden" in style


class _Lines:
    """Collects inline text into lines and lines into paragraphs, collapsing whitespace."""

    __slots__ = ("_current", "_gap", "_lines")

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._current: list[str] = []
        self._gap = 0

    def text(self, text: str, *, preformatted: bool) -> None:
        if not preformatted:
            self._current.append(text)
            return
        first, *rest = text.split("\n")
        self._current.append(first)
        for line in rest:
            self.brk(_LINE)
            self._current.append(line)

    def brk(self, level: int) -> None:
        if level == 0:
            return
        line = _HTML_SPACE.sub(" ", "".join(self._current)).strip(" ")
        self._current.clear()
        if line:
            if self._lines:
                self._lines.append("\n\n" if self._gap >= _PARAGRAPH else "\n")
            self._lines.append(line)
            self._gap = 0
        self._gap = max(self._gap, level)

    def joined(self) -> str:
        return "".join(self._lines)
