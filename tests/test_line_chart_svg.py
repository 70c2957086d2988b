"""The inline SVG line chart of the Drive page: ticks, where points land, gaps, escaping."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree

import pytest

from dashboard.views.line_chart_svg import (
    BOTTOM,
    HEIGHT,
    LEFT,
    RIGHT,
    TOP,
    WIDTH,
    line_chart_svg,
    markdown_block,
    nice_ticks,
)

SVG = "{http://www.w3.org/2000/svg}"


def _parsed(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)  # well-formed XML, or this raises


@pytest.mark.parametrize(("low", "high", "expected"), [
    (0.0, 0.1, [0.0, 0.02, 0.04, 0.06, 0.08, 0.1]),
    (0.0, 0.093, [0.0, 0.02, 0.04, 0.06, 0.08, 0.1]),
    (1, 29, [0, 5, 10, 15, 20, 25, 30]),
    (1, 4, [1, 1.5, 2, 2.5, 3, 3.5, 4]),
    (0.0, 0.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),  # nothing to span: one unit
])
def test_ticks_are_round_and_cover_the_range(low, high, expected):
    assert nice_ticks(low, high) == pytest.approx(expected)


def test_ticks_refuse_what_is_not_a_number():
    with pytest.raises(ValueError, match="finite"):
        nice_ticks(0.0, float("nan"))


def test_points_land_where_their_values_say():
    svg = line_chart_svg([("a", [0, 10], [0.0, 0.1], ["first", "second"])], ["#ff0000"], "frame", "flicker")
    root = _parsed(svg)
    circles = root.findall(f".//{SVG}circle")
    assert [(float(c.get("cx")), float(c.get("cy"))) for c in circles] == [
        (LEFT, HEIGHT - BOTTOM), (WIDTH - RIGHT, TOP)]  # the ticks end at 0..10 and 0..10 %
    assert [c.find(f"{SVG}title").text for c in circles] == ["first", "second"]
    assert {text.text for text in root.iter(f"{SVG}text")} >= {"0%", "10%", "frame", "flicker", "a"}


def test_a_missing_value_breaks_the_line_and_draws_no_point():
    svg = line_chart_svg([("a", [1, 2, 3, 4], [0.1, None, 0.2, 0.3], ["1", "2", "3", "4"])], ["#000"], "x", "y")
    root = _parsed(svg)
    [path] = root.findall(f".//{SVG}path")
    assert re.findall(r"[ML]", path.get("d")) == ["M", "M", "L"]
    assert [c.find(f"{SVG}title").text for c in root.findall(f".//{SVG}circle")] == ["1", "3", "4"]


def test_lines_take_the_colours_in_turn_and_name_themselves():
    series = [(name, [1, 2], [0.1, 0.2], ["", ""]) for name in ("a", "b", "c")]
    root = _parsed(line_chart_svg(series, ["#111111", "#222222"], "x", "y"))
    groups = root.findall(f".//{SVG}g")
    assert [g.get("data-name") for g in groups] == ["a", "b", "c"]
    assert [g.find(f"{SVG}path").get("stroke") for g in groups] == ["#111111", "#222222", "#111111"]


def test_names_and_hover_texts_are_text_never_markup():
    series = [("<script>alert(1)</script>", [1, 2], [0.1, 0.2], ['a "quote" & <b>', "two\nlines"])]
    svg = line_chart_svg(series, ["#000"], "x_axis", "y")
    assert "<script>" not in svg and "<b>" not in svg
    root = _parsed(svg)
    titles = [c.find(f"{SVG}title").text for c in root.findall(f".//{SVG}circle")]
    assert titles == ['a "quote" & <b>', "two\nlines"]
    assert "<script>alert(1)</script>" in {text.text for text in root.iter(f"{SVG}text")}


def test_the_markdown_block_has_no_blank_line_and_keeps_underscores():
    svg = line_chart_svg([("run_a_b", [1, 2], [0.1, 0.2], ["x\n\ny", ""])], ["#000"], "x", "y")
    block = markdown_block(svg)
    assert block.startswith("<div") and "\n\n" not in block and "run_a_b" in block
