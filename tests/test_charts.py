"""The shared chart specs (siamese_studio/ui/charts.py): what was seen clipped in a browser."""
import pytest

pytest.importorskip("altair")

from siamese_studio.ui import charts  # noqa: E402


def test_class_legend_lists_every_class_in_a_third_of_the_page():
    legend = charts.class_legend(10).to_dict()
    # A third of a 1400-px page beside the sidebar is ~300 px: two 100-px labels and their
    # symbols fit; the five columns before showed six of Fashion-MNIST's ten classes.
    assert legend["columns"] * (legend["labelLimit"] + 30) <= 300
    assert legend["symbolLimit"] == 0                       # no cap on the entries
    assert charts.class_legend(20) is not None and charts.class_legend(21) is None


def test_distance_scale_leaves_its_height_to_streamlit():
    """A height in the spec sizes the plot alone, and Streamlit framed the chart to it, cutting
    the axis title off; without one, st.altair_chart(height=SCALE_HEIGHT) fits it all."""
    spec = charts.distance_scale(0.8, 0.688).to_dict()
    assert "height" not in spec and charts.SCALE_HEIGHT >= 120
    zones = spec["layer"][0]
    assert zones["encoding"]["x"]["title"] == "distance"
    page = (charts.__file__.rsplit("/ui/", 1)[0] + "/pages/compare.py")
    assert "height=SCALE_HEIGHT" in open(page).read()


def test_run_curves_one_line_per_run():
    curves = [{"run": r, "epoch": e, "seconds": 2.0 * e, "pair accuracy": 0.5, "ROC AUC": 0.6}
              for r in ("a", "b") for e in (1, 2)]
    spec = charts.run_curves(curves, "ROC AUC").to_dict()
    assert spec["encoding"]["color"]["field"] == "run"
    assert spec["encoding"]["x"]["field"] == "seconds"
    assert spec["encoding"]["y"]["field"] == "ROC AUC"
