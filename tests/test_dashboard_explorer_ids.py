"""The Image explorer's id box: it names the range of ids, and an id out of that range (typed, or
in a link) is said plainly, with the image shown instead (issue 25, defect 5)."""

from dashboard_fixtures import open_page

from training.data.index import load_or_build_index


def _warnings(at) -> str:
    return "\n".join(str(w.value) for w in at.warning)


def test_the_id_box_names_the_range_and_an_id_out_of_it_is_said(dashboard_env):
    high = load_or_build_index(dashboard_env.data_root).next_id - 1
    at = open_page("explorer")
    box = at.number_input[0]
    assert box.label == f"Image id (0 to {high})"
    shown = box.value

    box.set_value(5000).run()
    assert not at.exception
    said = _warnings(at)
    assert f"There is no image 5000: ids run from 0 to {high}" in said
    assert f"showing image {shown}" in said
    assert at.number_input[0].value == shown  # the box goes back to the image shown
    assert at.query_params["id"] == str(shown)

    # the next id typed in range: no warning left over
    other = next(i for i in range(high + 1) if i != shown)
    at.number_input[0].set_value(other).run()
    assert not at.exception and "There is no image" not in _warnings(at)
    assert at.query_params["id"] == str(other)


def test_a_link_with_an_id_out_of_range_says_the_range(dashboard_env):
    high = load_or_build_index(dashboard_env.data_root).next_id - 1
    at = open_page("explorer", {"id": "5000"})
    assert not at.exception
    said = _warnings(at)
    assert f"There is no image 5000: ids run from 0 to {high}" in said
    shown = at.number_input[0].value
    assert f"showing image {shown}" in said and at.query_params["id"] == str(shown)
