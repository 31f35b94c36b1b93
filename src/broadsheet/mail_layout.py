"""Email that mail clients show as meant: one layout, absolute links, inlined CSS, a text part.

Every email Broadsheet sends is an HTML page extending ``email/layout.html``
and finished here: heading anchors (the ``#`` after each heading) are
dropped, every link and image is made absolute (a mail app has no page to
resolve ``href="/"`` against), and the layout's stylesheet is inlined into
``style`` attributes by css-inline, since many clients drop ``<style>``.
The plain-text part is made from the same HTML by inscriptis (Apache-2.0,
layout-aware: headings and list items on their own lines, tables as text
grids, ``<pre>`` lines kept), with each link's address as a numbered
footnote.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from urllib.parse import urljoin, urlsplit

import css_inline
import lxml.html
from flask import current_app, render_template
from flask_mailman import EmailMultiAlternatives
from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.html_properties import Display
from inscriptis.model.config import ParserConfig
from inscriptis.model.html_element import HtmlElement as TextElement
from lxml.html import HtmlElement
from markupsafe import Markup
from pygments.formatters import HtmlFormatter

MAX_WIDTH = 640  # pixels: the widest an email's column gets
HEADING_ANCHORS = '//a[contains(concat(" ", normalize-space(@class), " "), " header-anchor ")]'
_URL_ATTRIBUTES = (("a", "href"), ("img", "src"), ("link", "href"), ("area", "href"))


@cache
def code_colours() -> str:
    """Pygments' colours for highlighted code, as rules the inliner can apply."""
    return str(HtmlFormatter(style="default").get_style_defs("pre code"))


@cache
def _inliner() -> css_inline.CSSInliner:
    return css_inline.CSSInliner(load_remote_stylesheets=False, keep_style_tags=False)


def _absolute(value: str, base: str) -> str:
    if urlsplit(value).scheme:
        return value
    return urljoin(base, value)


def _tree(html: str, base: str) -> HtmlElement:
    tree = lxml.html.document_fromstring(html)
    for anchor in tree.xpath(HEADING_ANCHORS):
        anchor.drop_tree()
    for tag, attribute in _URL_ATTRIBUTES:
        for element in tree.iter(tag):
            value = element.get(attribute)
            if value is not None:
                element.set(attribute, _absolute(value.strip(), base))
    for script in tree.iter("script"):
        script.drop_tree()
    return tree


def finish_html(html: str, *, base: str) -> str:
    """The HTML part: anchors gone, links absolute against ``base``, every style inline."""
    tree = _tree(html, base)
    page = lxml.html.tostring(tree, doctype="<!doctype html>", encoding="unicode")
    return str(_inliner().inline(page))


@cache
def _text_profile() -> dict[str, TextElement]:
    """inscriptis' strict profile, with a blank line around tables, code and quotes."""
    profile = dict(CSS_PROFILES["strict"])
    for tag in ("table", "pre", "blockquote"):
        spaced = copy.copy(profile.get(tag) or TextElement(tag, display=Display.block))
        spaced.margin_before = spaced.margin_after = 1
        profile[tag] = spaced
    return profile


def html_to_text(html: str, *, base: str) -> str:
    """The plain-text part of ``html``: its layout as text, its links as footnotes."""
    tree = _tree(html, base)
    for head in tree.iter("head"):
        head.drop_tree()
    notes: list[str] = []
    for link in tree.iter("a"):
        href = link.get("href")
        if not href or link.text_content().strip() == href:
            continue
        if href not in notes:
            notes.append(href)
        link.tail = f" [{notes.index(href) + 1}]{link.tail or ''}"
    for pre in tree.iter("pre"):  # highlighted code: its lines, without the colour spans
        code = pre.text_content()
        for child in list(pre):
            pre.remove(child)
        pre.text = code
    config = ParserConfig(css=_text_profile(), table_cell_separator=" | ", display_images=True)
    text = get_text(lxml.html.tostring(tree, encoding="unicode"), config).strip("\n")
    lines = [line.rstrip() for line in text.splitlines()]
    body = "\n".join(lines)
    while "\n\n\n" in body:
        body = body.replace("\n\n\n", "\n\n")
    if notes:
        body += "\n\nLinks:\n" + "\n".join(f"[{n}] {url}" for n, url in enumerate(notes, 1))
    return body + "\n"


def html_email(
    *,
    subject: str,
    html: str,
    base: str,
    to: list[str],
    from_email: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> EmailMultiAlternatives:
    """A message with a text part and an HTML part, both made from the rendered ``html``."""
    message = EmailMultiAlternatives(
        subject=subject,
        body=html_to_text(html, base=base),
        from_email=from_email,
        to=to,
        headers=dict(headers or {}),
    )
    message.attach_alternative(finish_html(html, base=base), "text/html")
    return message


# ``app.extensions[SITE_TITLE]()``: the title staff gave the site (create_app provides it).
SITE_TITLE = "broadsheet.site_title"


def site_title() -> str:
    """The site's title as staff last saved it, for email composed in a package that the
    settings package builds on (accounts), and so cannot read it itself."""
    title: str = current_app.extensions[SITE_TITLE]()
    return title


def render_email(template: str, **context: object) -> str:
    """Render an email template (one extending ``email/layout.html``) with the layout's CSS."""
    colours = Markup(code_colours())  # noqa: S704 (Pygments' own stylesheet, no user input)
    return render_template(template, code_colours=colours, **context)
