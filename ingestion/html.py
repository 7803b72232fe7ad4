"""HTML to text: what a reader sees, and apart from it what a reader does not.

Visible text becomes the document. Hidden text (comments, `hidden` and
`aria-hidden` elements, `display:none`, `visibility:hidden`, zero opacity,
tiny or white text, hidden inputs) is never shown to anyone, but it is where
an attacker hides instructions for the model, so it is kept for the
injection scanner.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning
from bs4.element import Comment, NavigableString, Tag

_DROP = ("script", "style", "noscript", "template", "head", "object", "embed")
_BLOCK = {
    "p",
    "div",
    "section",
    "article",
    "header",
    "footer",
    "main",
    "aside",
    "nav",
    "ul",
    "ol",
    "table",
    "thead",
    "tbody",
    "blockquote",
    "pre",
    "figure",
    "figcaption",
    "dl",
    "form",
    "fieldset",
    "address",
    "details",
    "summary",
    "hr",
}
_LINE = {"li", "tr", "br", "dt", "dd", "td", "th"}
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_STYLE_HIDDEN = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|opacity\s*:\s*0(?:\.0+)?\s*(?:;|$)"
    r"|font-size\s*:\s*(?:0|0?\.\d+|1)(?:px|pt|em|rem)?\s*(?:;|$)"
    r"|(?<![-\w])color\s*:\s*(?:#fff(?:fff)?|white|transparent|rgba?\(\s*255\s*,\s*255\s*,\s*255)"
    r"|(?:height|width)\s*:\s*0(?:px)?\s*(?:;|$).*overflow\s*:\s*hidden"
    r"|clip\s*:\s*rect\(\s*0",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class HtmlText:
    """The parts of an HTML document."""

    title: str
    visible: str
    hidden: str


def _is_hidden(tag: Tag) -> bool:
    if tag.has_attr("hidden") or str(tag.get("aria-hidden", "")).lower() == "true":
        return True
    if tag.name == "input" and str(tag.get("type", "")).lower() == "hidden":
        return True
    style = tag.get("style")
    return bool(style and _STYLE_HIDDEN.search(str(style)))


def _text(tag: Tag) -> str:
    return " ".join(tag.get_text(" ", strip=True).split())


def extract_html(markup: str) -> HtmlText:
    """Split `markup` into title, visible text and hidden text."""
    with warnings.catch_warnings():
        # Markup is read as a browser would read it, XML-looking or not (an SVG, an RSS item,
        # a chunk that starts with `<?xml`): the warning that says so is expected here.
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(markup, "lxml")
    hidden: list[str] = []
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        if comment.strip():
            hidden.append(" ".join(comment.split()))
        comment.extract()
    title_tag = soup.find("title")
    title = _text(title_tag) if isinstance(title_tag, Tag) else ""
    for tag in soup.find_all(_DROP):
        tag.decompose()
    for tag in soup.find_all(True):
        if not isinstance(tag, Tag) or tag.decomposed:
            continue
        if _is_hidden(tag):
            text = _text(tag) or str(tag.get("value", "")).strip()
            if text:
                hidden.append(text)
            tag.decompose()
    if not title:
        h1 = soup.find("h1")
        title = _text(h1) if isinstance(h1, Tag) else ""
    lines: list[str] = []
    _walk(soup, lines)
    visible = "\n".join(line for line in (" ".join(chunk.split()) for chunk in "".join(lines).split("\n")))
    visible = re.sub(r"\n{3,}", "\n\n", visible).strip()
    return HtmlText(title=title, visible=visible, hidden="\n".join(hidden))


def _walk(node: Tag, out: list[str]) -> None:
    for child in node.children:
        if isinstance(child, NavigableString):
            out.append(str(child))
        elif isinstance(child, Tag):
            level = _HEADINGS.get(child.name)
            if level is not None:
                out.append(f"\n\n{'#' * level} {_text(child)}\n\n")
            elif child.name in _LINE:
                out.append("\n")
                _walk(child, out)
            elif child.name in _BLOCK:
                out.append("\n\n")
                _walk(child, out)
                out.append("\n\n")
            else:
                _walk(child, out)
