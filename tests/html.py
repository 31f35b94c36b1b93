"""Reading HTML the way a browser would, to check what reaches a reader."""

from __future__ import annotations

from html.parser import HTMLParser

DANGEROUS_TAGS = {"script", "iframe", "object", "embed", "form", "input", "svg", "math", "style"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href"}


class _Inspector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DANGEROUS_TAGS:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            value = (value or "").strip().lower().replace("\\x00", "")
            if name.startswith("on"):
                self.problems.append(f"{tag}[{name}]")
            elif name in URL_ATTRIBUTES and value.startswith(("javascript:", "data:", "vbscript:")):
                self.problems.append(f"{tag}[{name}={value}]")
            elif name == "style" and ("url(" in value or "expression" in value):
                self.problems.append(f"{tag}[style={value}]")


def unsafe_markup(html: str) -> list[str]:
    """Tags, handlers and URLs in ``html`` that could run script in a reader's browser."""
    inspector = _Inspector()
    inspector.feed(html)
    inspector.close()
    return inspector.problems
