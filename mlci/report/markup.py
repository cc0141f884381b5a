"""Safe text for GitLab-flavoured markdown.

Run names, params and rule messages are user data. Posted raw they could break
a table (`|`, newlines), inject HTML or links, hide text in a comment, or
notify people (`@all`). Everything user-supplied goes through these helpers.
"""

from __future__ import annotations

import html
import math
import re

# Brackets are escaped, so parentheses and `!` can no longer form links or images.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]#|~$])")
_MENTION = re.compile(r"([@])(?=\w)")
MAX_CELL = 120


def clip(text: str, limit: int = MAX_CELL) -> str:
    text = " ".join(str(text).split())  # newlines and runs of spaces become one space
    return text if len(text) <= limit else text[: limit - 1] + "…"


def md_text(text: str, limit: int = MAX_CELL) -> str:
    """Plain text that renders literally: no markup, no HTML, no mentions."""
    text = html.escape(clip(text, limit), quote=False)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    # A zero-width space after @ keeps GitLab from turning @user/@all into a notification.
    return _MENTION.sub("\\1\u200b", text)


def md_code(text: str, limit: int = MAX_CELL, *, in_table: bool = True) -> str:
    """Inline code for identifiers (metric/param names, values); nothing inside renders as markup."""
    text = clip(text, limit)
    if not text:
        return "—"
    # An HTML comment opener in a value could pass for the note's hidden key marker.
    text = text.replace("<!--", "<\u200b!--")
    if in_table:
        # `|` splits table cells even inside code spans unless escaped (GFM table rule).
        text = text.replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_link(text: str, url: str) -> str:
    """[text](url) when the URL is an http(s) URL; otherwise the plain text."""
    label = md_text(text)
    if url.startswith(("http://", "https://")) and not re.search(r"[\s()<>]", url):
        return f"[{label}]({url})"
    return label


def fmt_number(value: float | None) -> str:
    if value is None:
        return "—"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def fmt_delta(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:+.4g}"


def fmt_relative(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value * 100:+.2f}%"
