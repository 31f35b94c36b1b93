"""Markdown to safe HTML, done once when a post is saved.

CommonMark with tables, strikethrough and footnotes (markdown-it-py),
code highlighted by Pygments, headings given anchors, and the result
sanitised by nh3 (ammonia) so that no script, event handler or
``javascript:`` URL reaches a reader, whatever the Markdown held.
"""

from __future__ import annotations

import html as htmllib
import itertools
from dataclasses import dataclass
from functools import cache
from html.parser import HTMLParser

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.footnote import footnote_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

EXCERPT_LENGTH = 280
WORDS_PER_MINUTE = 230

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "div", "em", "figcaption", "figure",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "mark", "ol", "p",
    "pre", "s", "section", "small", "span", "strong", "sub", "sup", "table", "tbody", "td",
    "tfoot", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "*": {"class", "id"},
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height", "loading"},
    "ol": {"start"},
    "td": {"style"},
    "th": {"style"},
}
ALLOWED_STYLES = {"text-align"}
URL_SCHEMES = {"http", "https", "mailto"}
_formatter = HtmlFormatter(nowrap=True)


@dataclass(frozen=True)
class Rendered:
    html: str
    excerpt: str


def _highlight(code: str, lang: str, _attrs: str) -> str:
    try:
        lexer = get_lexer_by_name(lang.strip()) if lang.strip() else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return ""  # markdown-it escapes the code itself
    return highlight(code, lexer, _formatter)


@cache
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"highlight": _highlight, "html": True, "linkify": False})
    md.enable(["table", "strikethrough"])
    md.use(footnote_plugin)
    md.use(anchors_plugin, min_level=2, max_level=4, permalink=True, permalinkSymbol="#")
    return md


def sanitise(html: str) -> str:
    """Keep the tags and attributes a post needs; drop every script and handler."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        filter_style_properties=ALLOWED_STYLES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


# Tags that end a word wherever they stand: text on either side never runs together.
_BREAKING_TAGS = {
    "address", "article", "aside", "blockquote", "br", "dd", "details", "div", "dl", "dt",
    "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
    "main", "nav", "ol", "p", "pre", "section", "summary", "table", "td", "th", "tr", "ul",
}  # fmt: skip


class _HtmlText(HTMLParser):
    """The text of an HTML fragment, a space wherever a block element or a line break stands."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skipping += 1
        elif tag in _BREAKING_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BREAKING_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _html_text(fragment: str) -> str:
    parser = _HtmlText()
    parser.feed(fragment)
    parser.close()
    # Escaped again: the excerpt is unescaped once at the end, like Markdown text.
    return htmllib.escape("".join(parser.parts), quote=False)


def _plain_text(inline: Token) -> str:
    parts = []
    for child in inline.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "html_inline":
            parts.append(_html_text(child.content))
    return "".join(parts)


def _excerpt(tokens: list[Token], length: int = EXCERPT_LENGTH) -> str:
    """The text of the post's paragraphs (list items and quotes included), each a word apart."""
    text = ""
    for previous, token in itertools.pairwise([Token("start", "", 0), *tokens]):
        if previous.type == "paragraph_open" and token.type == "inline":
            piece = _plain_text(token)
        elif token.type == "html_block":
            piece = _html_text(token.content)
        else:
            continue
        text = f"{text} {piece}".strip()
        if len(text) >= length:
            break
    return shorten(text, length)


def shorten(text: str, length: int = EXCERPT_LENGTH) -> str:
    """Cut plain text at a word boundary, marking the cut with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= length:
        return text
    cut = text[: length - 1].rsplit(" ", 1)[0].rstrip(",.;:")
    return f"{cut}…"


def render_markdown(source: str) -> Rendered:
    """Render Markdown to sanitised HTML and derive a plain-text excerpt."""
    md = _parser()
    tokens = md.parse(source)
    html = md.renderer.render(tokens, md.options, {})
    return Rendered(html=sanitise(html), excerpt=htmllib.unescape(_excerpt(tokens)))


def count_words(markdown: str) -> int:
    """The words of a post as its reading time counts them: its Markdown split on spaces."""
    return len(markdown.split())


def reading_minutes(words: int) -> int:
    """Minutes a reader needs for ``words``, at about 230 words a minute; never less than one."""
    return max(1, round(words / WORDS_PER_MINUTE))
