"""Charts shared by the pages (Altair specs built from core results)."""
from __future__ import annotations

import altair as alt
import pandas as pd


def distance_scale(distance: float, threshold: float) -> alt.LayerChart:
    """A distance on the [0, 2] scale, with the "same" and "different" zones either side of the
    threshold."""
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
    label = alt.Chart(here).mark_text(dy=-24, fontWeight="bold").encode(
        x=alt.X("d:Q", scale=x), text="label")
    # Room below the axis for its title (it was clipped at the default padding).
    return alt.layer(zones, names, marker, label).properties(
        height=80, padding={"bottom": 12, "top": 4, "left": 4, "right": 4})


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
    return (lines + rule).properties(height=220)
