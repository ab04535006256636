"""Charts shared by the pages (Altair specs built from core results)."""
from __future__ import annotations

import altair as alt
import pandas as pd


SCALE_HEIGHT = 130
RATES_HEIGHT = 300
LEGEND_COLUMNS, LEGEND_LABEL_PX, LEGEND_MAX_CLASSES = 2, 100, 20


def class_legend(n_classes: int) -> alt.Legend | None:
    """The legend of a chart coloured by class, in a third of the page: two columns of labels
    cut at 100 px fit there (five columns showed six of Fashion-MNIST's ten classes). Dozens of
    classes (your own data) would make it taller than the chart: none then, colours and the
    tooltip tell them apart."""
    if n_classes > LEGEND_MAX_CLASSES:
        return None
    return alt.Legend(orient="bottom", columns=LEGEND_COLUMNS, title=None,
                      labelLimit=LEGEND_LABEL_PX, symbolLimit=0)


def distance_scale(distance: float, threshold: float) -> alt.LayerChart:
    """A distance on the [0, 2] scale, with the "same" and "different" zones either side of the
    threshold. No height of its own: give ``st.altair_chart`` one (``SCALE_HEIGHT``), which
    then fits the whole chart, axis title included, into it (a height in the spec sizes the
    plot alone, and Streamlit's frame clipped the axis title below it)."""
    top = max(2.0, distance)
    x = alt.Scale(domain=[0, top])
    zones = alt.Chart(pd.DataFrame({"from": [0, threshold], "to": [threshold, top],
                                    "zone": ["same", "different"]})).mark_bar(height=26).encode(
        x=alt.X("from:Q", title="distance", scale=x), x2="to",
        color=alt.Color("zone:N", legend=None, scale=alt.Scale(domain=["same", "different"],
                                                               range=["#a8e6b5", "#f5b1b1"])))
    names = alt.Chart(pd.DataFrame({"mid": [threshold / 2, (threshold + top) / 2],
                                    "zone": ["same", "different"]})).mark_text(
        color="#333").encode(x=alt.X("mid:Q", scale=x), text="zone")
    here = pd.DataFrame({"d": [distance], "label": ["this pair"]})
    marker = alt.Chart(here).mark_tick(thickness=4, size=40, color="black").encode(
        x=alt.X("d:Q", scale=x))
    label = alt.Chart(here).mark_text(dy=-20, fontWeight="bold").encode(
        x=alt.X("d:Q", scale=x), text="label")
    return alt.layer(zones, names, marker, label)


def operating_point(points: dict, threshold: float) -> alt.LayerChart:
    """The validation error rates against the threshold, with the chosen threshold marked: a
    lower threshold accepts fewer impostors and rejects more genuine matches."""
    df = pd.DataFrame({"threshold": points["threshold"], "false accepts": points["far"],
                       "false rejects": points["frr"]}).melt("threshold", var_name="rate")
    lines = alt.Chart(df).mark_line().encode(
        x=alt.X("threshold:Q", title="threshold (distance)"),
        y=alt.Y("value:Q", title="rate on validation pairs", axis=alt.Axis(format="%")),
        color=alt.Color("rate:N", scale=alt.Scale(domain=["false accepts", "false rejects"],
                                                  range=["#d62728", "#1f77b4"]),
                        legend=alt.Legend(orient="bottom", title=None)))
    rule = alt.Chart(pd.DataFrame({"t": [threshold]})).mark_rule(
        color="black", strokeDash=[4, 3], size=2).encode(x="t:Q")
    return lines + rule     # its height: st.altair_chart(height=RATES_HEIGHT), see SCALE_HEIGHT


def run_curves(curves: list[dict], metric: str) -> alt.Chart:
    """One validation metric of several runs against training time (``runs.side_by_side``'s
    curves): the runs' own clocks, so a fast run and a long one share the axis honestly."""
    df = pd.DataFrame(curves, columns=["run", "epoch", "seconds", metric])
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("seconds:Q", title="training time (s)"),
        y=alt.Y(f"{metric}:Q", title=f"validation {metric}", scale=alt.Scale(zero=False)),
        color=alt.Color("run:N", legend=alt.Legend(orient="bottom", title=None, columns=1,
                                                   labelLimit=400)),
        tooltip=["run", "epoch", alt.Tooltip("seconds:Q", format=".0f"),
                 alt.Tooltip(f"{metric}:Q", format=".4f")]).properties(height=240)
