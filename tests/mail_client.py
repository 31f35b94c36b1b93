"""The rules a mail client applies to an email's HTML, as checks a test can make."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import lxml.html

MAX_WIDTH = 640
_PIXELS = re.compile(r"(?:^|;)\s*(?:max-)?width\s*:\s*(\d+(?:\.\d+)?)px", re.I)


def style_of(element: lxml.html.HtmlElement) -> dict[str, str]:
    rules = {}
    for part in (element.get("style") or "").split(";"):
        name, _, value = part.partition(":")
        if name.strip():
            rules[name.strip().lower()] = value.strip()
    return rules


def mail_client_problems(html: str) -> list[str]:
    """What a mail app would get wrong: relative links, scripts, styles it drops, width."""
    tree = lxml.html.document_fromstring(html)
    problems = []
    for element, attribute, value, _pos in tree.iterlinks():
        if attribute in ("href", "src") and urlsplit(value).scheme not in (
            "https",
            "http",
            "mailto",
        ):
            problems.append(f"relative {attribute}={value!r} on <{element.tag}>")
    problems += [f"<{e.tag}> present" for e in tree.iter("script", "style", "link")]
    problems += [
        f"handler {name} on <{e.tag}>"
        for e in tree.iter()
        for name in e.attrib
        if name.startswith("on")
    ]
    for element in tree.iter():
        for width in _PIXELS.findall(element.get("style") or ""):
            if float(width) > MAX_WIDTH:
                problems.append(f"<{element.tag}> {width}px wide")
        if (element.get("width") or "").isdigit() and int(element.get("width") or 0) > MAX_WIDTH:
            problems.append(f"<{element.tag}> width={element.get('width')}")
    if not any(style_of(e).get("max-width") == f"{MAX_WIDTH}px" for e in tree.iter("div")):
        problems.append("no column of at most 640px")
    if tree.xpath("//a[contains(@class, 'header-anchor')]") or re.search(r">\s*#\s*</a>", html):
        problems.append("a heading anchor")
    return problems
