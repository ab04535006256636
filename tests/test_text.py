"""siamese_studio.ui.text: user text shown as itself in Streamlit's Markdown (issue 24, 10)."""
import html

import pytest
from markdown_it import MarkdownIt

from siamese_studio.ui.text import code, plain

HOSTILE = ["c0/**bold**.txt", "$x^2$", "![im](http://127.0.0.1:1/x.png)", "# heading",
           "1. list", "- item", "<b>tag</b>", "a_b_c", "`tick`", "[link](x)", "&amp;",
           ":red[colour] :smile:", "back\\slash", "| a | b |", "~~gone~~"]


@pytest.mark.parametrize("name", HOSTILE)
def test_plain_renders_as_the_text_itself(name):
    """CommonMark renders the escaped name as one paragraph of exactly that text: no emphasis,
    image, link, heading, list or HTML."""
    out = MarkdownIt("commonmark").render(plain(name))
    assert out == f"<p>{html.escape(name, quote=False)}</p>\n"


def test_plain_escapes_streamlit_directives_and_flattens_lines():
    """Streamlit's own syntax (LaTeX $…$, :emoji: and :colour[…]) is escaped too; a line break
    or a terminal control sequence in a name becomes a space (it could start a new block)."""
    assert plain("$x$") == r"\$x\$" and plain(":red[a]") == r"\:red\[a\]"
    assert plain("a\n# b") == r"a \# b" and plain("x\x1b[2Jy") == r"x \[2Jy"
    out = MarkdownIt("commonmark").render(plain("line\n\n# heading"))
    assert out.count("<p>") == 1 and "<h1>" not in out


@pytest.mark.parametrize("name", ["plain", "**b**", "a`b", "``x``", "![i](u)"])
def test_code_is_one_code_span_of_the_text(name):
    out = MarkdownIt("commonmark").render(code(name))
    assert out == f"<p><code>{html.escape(name, quote=False)}</code></p>\n"
