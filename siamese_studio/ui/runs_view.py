"""The Train page's list of this session's runs: rename, use, keep beyond a day, delete, and
two of them side by side."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from siamese_core import SiameseError, runs
from siamese_studio.ui.charts import run_curves
from siamese_studio.ui.common import ACTIVE_MODEL, dataset_labeller, say, section
from siamese_studio.ui.text import plain

MY_RUNS = "my_runs"        # session key: model prefixes of the runs this session started
MAX_KEPT = 5               # runs one session may keep (runs.KEPT_RETENTION_S instead of a day)


def remember(prefix) -> None:
    """Add a run to this session's list (once)."""
    mine = st.session_state.setdefault(MY_RUNS, [])
    if str(prefix) not in mine:
        mine.append(str(prefix))


def render_runs() -> None:
    """The session's saved runs as a table, and what can be done with one of them."""
    infos = [i for i in map(runs.describe, st.session_state.get(MY_RUNS, [])) if i is not None]
    if not infos:
        return
    active = st.session_state.get(ACTIVE_MODEL)
    label = dataset_labeller()
    st.subheader("Your runs")
    st.dataframe(pd.DataFrame([{
        "name": i.name, "created (UTC)": i.created.replace("T", " ").rstrip("Z"),
        "dataset": label(i.dataset), "loss": i.loss,
        "pair accuracy": f"{i.accuracy:.2%} ({'test' if i.on_test else 'val.'})",
        "kept": "kept" if i.kept else "a day", "in use": "yes" if i.prefix == active else ""}
        for i in infos]), hide_index=True)
    names = {i.prefix: i for i in infos}
    chosen = st.selectbox("Run", list(names), format_func=lambda p: names[p].name,
                          key="runs_chosen")
    run = names[chosen]
    c1, c2, c3, c4 = st.columns([3, 1, 1, 1], vertical_alignment="bottom")
    new = c1.text_input("Name", run.name, max_chars=runs.MAX_NAME, key=f"name_{chosen}")
    try:
        if new != run.name:
            runs.rename(chosen, new)
            st.rerun()
        if c2.button("Use", key="runs_use", disabled=run.prefix == active):
            st.session_state[ACTIVE_MODEL] = chosen
            st.rerun()
        kept = sum(i.kept for i in infos)
        want = c3.toggle("Keep", run.kept, key=f"keep_{chosen}",
                         disabled=not run.kept and kept >= MAX_KEPT,
                         help=f"Kept runs stay {runs.KEPT_RETENTION_S // 86400} days after "
                              f"their last change instead of one (at most {MAX_KEPT} per "
                              f"session, {runs.MAX_KEPT_TOTAL} on this server).")
        if want != run.kept:
            runs.keep(chosen, want)
            st.rerun()
        if c4.button("Delete", key="runs_delete", icon=":material/delete:"):
            runs.delete(chosen)
            st.session_state[MY_RUNS].remove(chosen)
            if active == chosen:
                st.session_state[ACTIVE_MODEL] = None
            st.rerun()
    except (SiameseError, OSError) as e:
        st.error(f"{plain(run.name)}: {say(e)}")
    if len(infos) >= 2:
        with section("Side by side"):
            render_side_by_side(names)


def render_side_by_side(names: dict) -> None:
    """Two runs' results, settings and validation curves next to each other."""
    st.markdown("**Side by side**")
    order = list(names)
    pair = st.multiselect("Runs to compare", order, default=order[-2:], max_selections=2,
                          format_func=lambda p: names[p].name, key="runs_side_by_side")
    if len(pair) < 2:
        st.info("Choose two runs.")
        return
    try:
        sbs = runs.side_by_side(pair)
    except SiameseError as e:
        st.error(say(e))
        return
    table = pd.DataFrame({n: [v[i] for _, v in sbs.rows] for i, n in enumerate(sbs.names)},
                         index=pd.Index([w for w, _ in sbs.rows], name=""))
    differs = sbs.differs
    st.dataframe(table.style.apply(
        lambda row: ["font-weight: bold" if row.name in differs else ""] * len(row), axis=1),
        height="content")
    st.caption("Bold: the rows where the two runs differ. Test figures come from each run's own "
               "test split (the same split for runs on one dataset and hold-out).")
    c1, c2 = st.columns(2)
    c1.altair_chart(run_curves(sbs.curves, "ROC AUC"), width="stretch")
    c2.altair_chart(run_curves(sbs.curves, "pair accuracy"), width="stretch")
