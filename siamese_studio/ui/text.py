"""Text from users (file, class, run and dataset names; messages that quote them) made safe for
Streamlit's Markdown: every element that takes a string here renders Markdown, LaTeX and emoji
codes, so a class folder named ``![x](http://host/x.png)`` would make the browser fetch an
address of the uploader's choosing. ``plain`` is the one place such text passes through."""
from __future__ import annotations

import re

# CommonMark lets a backslash escape any ASCII punctuation; Streamlit's LaTeX ($), emoji and
# colour directives (:name:, :red[...]) are punctuation too.
_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:&=\"'^@%/?,;])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def plain(text: object) -> str:
    """``text`` shown as itself in Markdown: punctuation escaped, line breaks and control
    characters (which could start a heading or a list, or reach a terminal) made one space."""
    return _PUNCTUATION.sub(r"\\\1", _CONTROL.sub(" ", str(text)))


def code(text: object) -> str:
    """``text`` as an inline code span (monospace, nothing inside it rendered), fenced with more
    backticks than it holds."""
    s = _CONTROL.sub(" ", str(text))
    fence = "`" * (max((len(r) for r in re.findall(r"`+", s)), default=0) + 1)
    # A backtick at either end would join the fence; CommonMark strips one space each side.
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"
