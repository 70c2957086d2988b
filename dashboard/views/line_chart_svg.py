"""A line chart as one inline SVG: for a page whose first job is to start something else (the Drive
page's video), where plotly's 4.7 MB script would hold the browser's main thread for most of a
second while the video waits. Pure function, no Streamlit: points carry their hover text as SVG
``<title>`` (the browser's own tooltip), text and axes take the theme's colour (``currentColor``).
Nothing is computed here but positions: the values are the caller's."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 860, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 40, 44
NICE_STEPS = (1, 2, 2.5, 5)
MAX_TICKS = 6
STYLE = (".lc-point{cursor:default}.lc-point:hover{r:6}"
         ".lc-grid{stroke:currentColor;stroke-opacity:.15}.lc-axis{stroke:currentColor;stroke-opacity:.5}"
         ".lc-text{fill:currentColor;font-size:12px}")


def _text(text: object) -> str:
    """Escaped for SVG text, on one line: a blank line would end the Markdown block that carries it."""
    return escape(" ".join(str(text).splitlines()))


def _hover(text: object) -> str:
    """Escaped for a ``<title>``, its line breaks kept as character references."""
    return escape(str(text)).replace("\r", "").replace("\n", "&#10;")


def markdown_block(svg: str) -> str:
    """``svg`` for ``st.markdown(..., unsafe_allow_html=True)``: inside a ``<div>`` that opens a
    CommonMark HTML block (no Markdown inside it, so a ``_`` in a run's name stays one), because
    ``st.html`` sanitises with DOMPurify's HTML profile, which drops every SVG element."""
    return f'<div class="line-chart">\n{svg}\n</div>'


def nice_ticks(low: float, high: float, max_ticks: int = MAX_TICKS) -> list[float]:
    """Round tick values covering ``[low, high]`` (1, 2, 2.5 or 5 times a power of ten apart), at
    most ``max_ticks`` of them plus one."""
    if not math.isfinite(low) or not math.isfinite(high):
        raise ValueError(f"ticks need finite bounds, got {low}, {high}")
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max_ticks
    power = 10 ** math.floor(math.log10(raw))
    step = next((s * power for s in NICE_STEPS if s * power >= raw), 10 * power)
    first = math.floor(low / step + 1e-9) * step
    ticks, value = [], first
    while value < high + step * 0.5:
        ticks.append(round(value, 12))
        if value >= high - 1e-12:
            break
        value += step
    return ticks


def _percent(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step * 100) + 1e-9)) if step > 0 else 0
    return f"{value * 100:.{decimals}f}%"


def line_chart_svg(series: Sequence[tuple[str, Sequence[float], Sequence[float | None], Sequence[str]]],
                   colors: Sequence[str], x_title: str, y_title: str, percent: bool = True,
                   label: str = "") -> str:
    """An ``<svg>`` of lines: ``series`` is ``(name, xs, ys, hover texts)`` per line; a ``None`` in
    ``ys`` breaks the line there. ``percent`` writes the y ticks as percentages of 1. The chart
    fills its container's width (viewBox) and names its lines in a legend above the plot."""
    xs = [x for _, line_xs, _, _ in series for x in line_xs]
    ys = [y for _, _, line_ys, _ in series for y in line_ys if y is not None and math.isfinite(y)]
    x_ticks = nice_ticks(min(xs, default=0), max(xs, default=1))
    y_ticks = nice_ticks(0.0, max(ys, default=0.0) or 0.01)
    x_low, x_high, y_high = x_ticks[0], x_ticks[-1], y_ticks[-1]
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def at_x(x: float) -> float:
        return LEFT + (x - x_low) / ((x_high - x_low) or 1) * plot_width

    def at_y(y: float) -> float:
        return TOP + plot_height - y / (y_high or 1) * plot_height

    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else y_high
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
             f'aria-label="{_text(label or y_title)}" class="line-chart-svg"><style>{STYLE}</style>']
    for tick in y_ticks:
        text = _percent(tick, y_step) if percent else f"{tick:g}"
        parts.append(f'<line class="lc-grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{at_y(tick):.1f}" '
                     f'y2="{at_y(tick):.1f}"/><text class="lc-text" x="{LEFT - 6}" y="{at_y(tick) + 4:.1f}" '
                     f'text-anchor="end">{_text(text)}</text>')
    for tick in x_ticks:
        parts.append(f'<line class="lc-axis" x1="{at_x(tick):.1f}" x2="{at_x(tick):.1f}" y1="{TOP + plot_height}" '
                     f'y2="{TOP + plot_height + 5}"/><text class="lc-text" x="{at_x(tick):.1f}" '
                     f'y="{TOP + plot_height + 18}" text-anchor="middle">{tick:g}</text>')
    parts.append(f'<line class="lc-axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_height}" '
                 f'y2="{TOP + plot_height}"/>'
                 f'<text class="lc-text" x="{LEFT + plot_width / 2:.1f}" y="{HEIGHT - 6}" '
                 f'text-anchor="middle">{_text(x_title)}</text>'
                 f'<text class="lc-text" transform="translate(14 {TOP + plot_height / 2:.1f}) rotate(-90)" '
                 f'text-anchor="middle">{_text(y_title)}</text>')
    legend_x = LEFT
    for number, (name, line_xs, line_ys, hovers) in enumerate(series):
        color = colors[number % len(colors)]
        path, pen_down = [], False
        for x, y in zip(line_xs, line_ys):
            if y is None or not math.isfinite(y):
                pen_down = False
                continue
            path.append(f"{'L' if pen_down else 'M'}{at_x(x):.1f} {at_y(y):.1f}")
            pen_down = True
        parts.append(f'<g class="lc-series" data-name="{_text(name)}">')
        if path:
            parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y, hover in zip(line_xs, line_ys, hovers):
            if y is not None and math.isfinite(y):
                parts.append(f'<circle class="lc-point" cx="{at_x(x):.1f}" cy="{at_y(y):.1f}" r="3.5" '
                             f'fill="{color}"><title>{_hover(hover)}</title></circle>')
        parts.append("</g>")
        parts.append(f'<line x1="{legend_x}" x2="{legend_x + 18}" y1="14" y2="14" stroke="{color}" '
                     f'stroke-width="3"/><text class="lc-text" x="{legend_x + 24}" y="18">{_text(name)}</text>')
        legend_x += 24 + 7 * len(name) + 24
    parts.append("</svg>")
    return "".join(parts)
