"""The page of a report: one HTML file that needs nothing but itself.

Everything a browser needs is inside the file: pictures as ``data:`` URIs (JPEG for photos, paletted
PNG for class maps), the charts as plotly figures drawn by the ``plotly.min.js`` bundled with the
installed plotly package, inlined once (never a CDN), the styles in one ``<style>`` element (the
system's fonts, no web font). A Content-Security-Policy ``<meta>`` forbids every request the page
could still make (``default-src 'none'``; pictures from ``data:`` only): opened from an e-mail or a
disk without a network, it shows the same.

Every text that comes from a person or a file (run names, tags, notes, paths) goes through
``escape`` (``html.escape`` with quotes) before it meets the markup; the figures go in as JSON with
``<``, ``>`` and ``&`` written as ``\\u003c``, ``\\u003e``, ``\\u0026``, so no string in them can end
the ``<script>`` element.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
from PIL import Image

JPEG_QUALITY = 85
# No request leaves the page: scripts and styles are inline, pictures data: URIs.
POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       margin: 1.5rem auto; max-width: 1500px; padding: 0 1rem; color: #1f2328; line-height: 1.4; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
h3 { margin-bottom: .3rem; }
.meta, .note-small { color: #57606a; font-size: .9rem; }
table { border-collapse: collapse; font-size: .85rem; margin: .5rem 0; }
th, td { border: 1px solid #d0d7de; padding: .2rem .45rem; text-align: right; white-space: nowrap; }
th { background: #f6f8fa; } td.text, th.text { text-align: left; }
.scroll { overflow-x: auto; }
.pictures { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: .6rem; }
figure { margin: 0; } figure img { width: 100%; height: auto; image-rendering: auto; display: block;
       border: 1px solid #d0d7de; }
figure.mask img { image-rendering: pixelated; }
figcaption { font-size: .85rem; color: #57606a; overflow-wrap: anywhere; }
.missing { border: 1px dashed #d0d7de; padding: 2rem 1rem; color: #57606a; text-align: center; }
.tag { display: inline-block; background: #ddf4ff; border: 1px solid #54aeff; border-radius: 1em;
       padding: 0 .6em; margin: 0 .3em .2em 0; font-size: .85rem; }
.note { white-space: pre-wrap; overflow-wrap: anywhere; background: #fff8c5; border-left: 3px solid #d4a72c;
        padding: .3rem .6rem; margin: .3rem 0; }
.chart { width: 100%; min-height: 320px; }
.image { margin-top: 1.8rem; }
"""


def escape(text: object) -> str:
    """``text`` as HTML text or attribute value: ``& < > " '`` escaped."""
    return html.escape(str(text), quote=True)


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def jpeg_uri(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> str:
    """A photo ``(H, W, 3)`` uint8 as a JPEG ``data:`` URI."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="JPEG", quality=quality)
    return data_uri(buffer.getvalue(), "image/jpeg")


def png_uri(classes: np.ndarray, palette: np.ndarray) -> str:
    """A class-index map ``(H, W)`` drawn in ``palette`` (``(256, 3)`` uint8) as a paletted PNG
    ``data:`` URI (a class map compresses to a few tens of kB where RGB would take hundreds)."""
    picture = Image.fromarray(np.ascontiguousarray(classes, dtype=np.uint8))
    picture.putpalette(np.asarray(palette, dtype=np.uint8).ravel().tolist())
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return data_uri(buffer.getvalue(), "image/png")


def figure_html(src: str, caption: str, mask: bool = False) -> str:
    """One picture of a row, with its caption (``caption`` is escaped here)."""
    return (f'<figure{" class=mask" if mask else ""}><img src="{src}" alt="{escape(caption)}" loading="eager">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def missing_html(caption: str, why: str) -> str:
    return f'<figure><div class="missing">{escape(why)}</div><figcaption>{escape(caption)}</figcaption></figure>'


def table_html(headers: Sequence[str], rows: Iterable[Sequence[object]], text_columns: int = 1) -> str:
    """A table of escaped cells: the first ``text_columns`` columns left-aligned (names), the others
    right-aligned (numbers)."""
    def cells(values, tag):
        return "".join(f'<{tag}{" class=text" if i < text_columns else ""}>{escape(v)}</{tag}>'
                       for i, v in enumerate(values))

    body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in rows)
    return (f'<div class="scroll"><table><thead><tr>{cells(headers, "th")}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def script_json(value) -> str:
    """``value`` as JSON that is safe inside a ``<script>`` element (no ``</script>``, no ``<!--``)."""
    text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@lru_cache(maxsize=1)
def plotly_js() -> str:
    """The ``plotly.min.js`` bundled with the installed plotly package (about 4.8 MB)."""
    from plotly.offline import get_plotlyjs

    script = get_plotlyjs()
    if "</script" in script.lower() or "<!--" in script:  # would end the inline element early
        raise ValueError("the bundled plotly.min.js cannot be inlined: it holds '</script' or '<!--'")
    return script


class Charts:
    """The page's plotly figures: ``add`` gives a figure's ``<div>``, ``script`` draws them all."""

    def __init__(self):
        self.figures: list[dict] = []

    def add(self, data: list[dict], layout: dict, height: int = 380) -> str:
        number = len(self.figures)
        self.figures.append({"id": f"chart-{number}", "data": data, "layout": {"height": height, **layout}})
        return f'<div class="chart" id="chart-{number}" style="height:{int(height)}px"></div>'

    def script(self) -> str:
        if not self.figures:
            return ""
        config = {"displaylogo": False, "responsive": True, "showLink": False}
        return (f"<script>{plotly_js()}</script>\n"
                f"<script>const FIGURES = {script_json(self.figures)};\n"
                f"const CONFIG = {script_json(config)};\n"
                "for (const f of FIGURES) { Plotly.newPlot(f.id, f.data, f.layout, CONFIG); }</script>")


def page(title: str, body: str, charts: Charts) -> str:
    """The whole file: ``title`` (escaped here) and ``body`` (markup already escaped)."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n<body>\n{body}\n"
            f"{charts.script()}\n</body></html>\n")
