"""HTML of another platform's posts to the Markdown Broadsheet's editor holds.

markdownify does the conversion.  What Markdown cannot say (a figure with
its caption, superscripts, a table with merged cells) stays as HTML inside
the Markdown, cleaned by the editor's own sanitiser; the post is then
rendered by ``content.rendering`` like anything written in the editor.

WordPress adds its own layers first: Gutenberg's block comments are dropped,
paragraphs its editor leaves implicit (blank lines) are made explicit, and
shortcodes become HTML (``[caption]``, ``[gallery]``, ``[embed]``) or stay
in the text, visible, never silently lost.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from bs4 import Tag
from markdownify import MarkdownConverter

from broadsheet.content.rendering import sanitise

# The id of a WordPress attachment → its file's URL (None when the file is not known).
AttachmentUrl = Callable[[int], str | None]

_gutenberg = re.compile(r"<!--\s*/?wp:.*?-->", re.DOTALL)
_comment = re.compile(r"<!--.*?-->", re.DOTALL)
_caption = re.compile(r"\[caption([^\]]*)\](.*?)\[/caption\]", re.DOTALL | re.IGNORECASE)
_gallery = re.compile(r"\[gallery([^\]]*)\]", re.IGNORECASE)
_embed = re.compile(r"\[embed[^\]]*\](.*?)\[/embed\]", re.DOTALL | re.IGNORECASE)
_attribute = re.compile(r"(\w+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|(\S+))")
_img_or_link = re.compile(r"^\s*((?:<a\b[^>]*>\s*)?<img\b[^>]*>(?:\s*</a>)?)(.*)$", re.DOTALL)
_block_start = re.compile(
    r"^\s*<(?:p|div|figure|h[1-6]|ul|ol|li|table|blockquote|pre|hr|section|dl|iframe|video|audio)"
    r"\b",
    re.IGNORECASE,
)
_bare_url = re.compile(r"^https?://\S+$")
_blank_lines = re.compile(r"\n\s*\n")


def _attributes(raw: str) -> dict[str, str]:
    return {
        m.group(1).lower(): html.unescape(m.group(2) or m.group(3) or m.group(4) or "")
        for m in _attribute.finditer(raw)
    }


def _figure(match: re.Match[str]) -> str:
    attrs = _attributes(match.group(1))
    inner = match.group(2)
    found = _img_or_link.match(inner)
    if found is None:
        return match.group(0)  # not the usual shape: left as it is, visible
    image, text = found.group(1), found.group(2).strip() or attrs.get("caption", "")
    caption = f"<figcaption>{text}</figcaption>" if text else ""
    return f"<figure>{image}{caption}</figure>"


def gallery_ids(text: str) -> list[int]:
    """The attachment ids the ``[gallery]`` shortcodes of ``text`` name."""
    return [
        int(i)
        for match in _gallery.finditer(text)
        for i in re.findall(r"\d+", _attributes(match.group(1)).get("ids", ""))
    ]


def shortcodes_to_html(text: str, attachment_url: AttachmentUrl | None = None) -> str:
    """Turn WordPress's common shortcodes into HTML; unknown ones stay in the text."""

    def gallery(match: re.Match[str]) -> str:
        ids = [int(i) for i in re.findall(r"\d+", _attributes(match.group(1)).get("ids", ""))]
        urls = [url for url in (attachment_url(i) for i in ids) if url] if attachment_url else []
        if not urls:
            return match.group(0)
        images = "".join(f'<img src="{html.escape(url)}" alt="">' for url in urls)
        return f'<figure class="gallery">{images}</figure>'

    def embed(match: re.Match[str]) -> str:
        url = html.escape(match.group(1).strip())
        return f'<p><a href="{url}">{url}</a></p>'

    text = _caption.sub(_figure, text)
    text = _gallery.sub(gallery, text)
    return _embed.sub(embed, text)


def autop(text: str) -> str:
    """Make the paragraphs WordPress's editor leaves implicit explicit (its ``wpautop``, in
    short): blank lines part paragraphs, a single newline inside one is a line break, and a
    URL alone on its line (an embed) becomes a link.  Chunks that are blocks already (the
    Gutenberg editor's ``<p>``) stay as they are."""
    chunks = []
    for chunk in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        chunk = chunk.strip()
        if not chunk:
            continue
        if _bare_url.match(chunk):
            url = html.escape(chunk)
            chunks.append(f'<p><a href="{url}">{url}</a></p>')
        elif _block_start.match(chunk):
            chunks.append(chunk)
        else:
            chunks.append("<p>" + chunk.replace("\n", "<br>\n") + "</p>")
    return "\n\n".join(chunks)


def _kept(element: Any) -> str:
    """An element Markdown cannot say, as sanitised HTML on lines of its own."""
    return _blank_lines.sub("\n", sanitise(str(element))).strip()


class _Tag(Tag):
    """bs4's element, answering the ``find_parent("pre")`` markdownify asks of every element
    by walking up the tree: bs4's general search builds a filter for each call, which was a
    third of a post's conversion."""

    def find_parent(self, name: Any = None, attrs: Any = None, **kwargs: Any) -> Any:
        if not isinstance(name, str) or attrs or kwargs:
            return super().find_parent(name, attrs, **kwargs)
        parent = self.parent
        while parent is not None and parent.name != name:
            parent = parent.parent
        return parent


class _Converter(MarkdownConverter):
    """markdownify, keeping as HTML what Markdown would lose."""

    def convert_figure(self, el: Any, text: str, parent_tags: set[str]) -> str:
        return f"\n\n{_kept(el)}\n\n"

    def convert_table(self, el: Any, text: str, parent_tags: set[str]) -> str:
        if el.find(attrs={"colspan": True}) or el.find(attrs={"rowspan": True}):
            return f"\n\n{_kept(el)}\n\n"
        return str(super().convert_table(el, text, parent_tags))  # type: ignore[misc]

    def _inline(self, el: Any, text: str, parent_tags: set[str]) -> str:
        return _kept(el)

    convert_sup = convert_sub = convert_mark = _inline

    def convert_iframe(self, el: Any, text: str, parent_tags: set[str]) -> str:
        # Embedded players are not allowed in posts: a link to what was embedded stays.
        src = el.get("src") or ""
        return f"\n\n<{src}>\n\n" if src.startswith(("http://", "https://")) else ""

    convert_video = convert_audio = convert_iframe


# One converter for every post: it keeps no state but a cache of its methods by tag name.
_converter = _Converter(
    heading_style="ATX",
    bullets="-",
    escape_misc=False,
    # A dict is passed to BeautifulSoup as its keywords (markdownify's type hints say str).
    bs4_options={"features": "html.parser", "element_classes": {Tag: _Tag}},  # type: ignore[arg-type]
)


def html_to_markdown(source: str) -> str:
    """Markdown for an HTML fragment (comments dropped)."""
    source = _comment.sub("", source)
    markdown = _converter.convert(source)
    return re.sub(r"\n{3,}", "\n\n", str(markdown)).strip() + "\n"


def wordpress_to_markdown(content: str, attachment_url: AttachmentUrl | None = None) -> str:
    """Markdown for a WordPress post's stored content (Gutenberg or the classic editor)."""
    content = _gutenberg.sub("", content)
    return html_to_markdown(autop(shortcodes_to_html(content, attachment_url)))
