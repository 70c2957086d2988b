"""Text that people typed (tags, notes, names from the dataset or the store), made safe to show
through Streamlit's Markdown: ``st.markdown``, ``st.caption``, ``st.write``, the alerts, image
captions and widget labels all render Markdown, so a tag ``![x](http://evil.example/p.png)`` would
make the browser fetch that address, ``[click me](http://evil.example)`` would be a link, and
``:red[...]``, ``$...$`` (LaTeX) and ``:material/...:`` would be drawn. Plain functions (no
Streamlit).

``plain`` puts a backslash before every ASCII punctuation character (CommonMark shows any escaped
punctuation as itself), so no link, image, HTML tag, emphasis, table, heading, list, LaTeX or
Streamlit directive can start; it also keeps the colons of an emoji shortcode (``:smile:``) and the
``http:``, ``www.`` and ``@`` of an autolink apart. A ``_`` or ``-`` between two letters or digits
is left as it is (it can start nothing there), so run names read the same in the page's source.
Line breaks become spaces (a caption is one line), and a control or invisible formatting
character (``training.runs.tags`` refuses them; an older file may hold one) shows as U+FFFD, so that a
bidi override cannot turn ``\\u202etxt.exe`` into "exe.txt".

Only for Markdown: tables, widget options and text inputs show text as it is, escaped text would
show its backslashes there.
"""

from __future__ import annotations

import re
import unicodedata

from training.runs.tags import REFUSED_CATEGORIES

REPLACEMENT = "\ufffd"
INTRAWORD = "_-"  # left alone between two letters or digits
_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]")  # every ASCII punctuation character


def _escaped(match: re.Match) -> str:
    character, text, at = match.group(), match.string, match.start()
    if character in INTRAWORD and 0 < at < len(text) - 1 and text[at - 1].isalnum() and text[at + 1].isalnum():
        return character
    return "\\" + character


def plain(text: object) -> str:
    """``text`` (``str()`` of it) as Markdown that shows exactly it, on one line."""
    line = " ".join(str(text).splitlines())
    visible = "".join(REPLACEMENT if unicodedata.category(character) in REFUSED_CATEGORIES and character != "\t"
                      else character for character in line)
    return _PUNCTUATION.sub(_escaped, visible)


def plain_list(texts, separator: str = ", ") -> str:
    """Each of ``texts`` through ``plain``, joined by ``separator`` (Markdown of the page's own)."""
    return separator.join(plain(text) for text in texts)
