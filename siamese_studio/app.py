"""Siamese pairs studio: browse pairs, train live, compare images.

Run from a checkout: ``streamlit run app.py`` (the root ``app.py`` calls ``main``); installed:
``siamese-studio``, which runs this file. Pages are registered by absolute path, so both entry
scripts serve the same pages."""
import streamlit as st

from siamese_studio.ui.common import DEEP_LINK, ENTRY, page


def main() -> None:
    """The navigation: every page, and the deep link a fresh server was first asked for."""
    st.set_page_config(page_title="Siamese pairs studio", page_icon=":material/compare:",
                       layout="wide")
    pages = [
        st.Page(page("home"), title="Home", icon=":material/home:", default=True),
        st.Page(page("your_data"), title="Your data", icon=":material/upload_file:",
                url_path="your-data"),
        st.Page(page("explorer"), title="Pair explorer", icon=":material/grid_view:",
                url_path="explorer"),
        st.Page(page("train"), title="Train", icon=":material/model_training:", url_path="train"),
        st.Page(page("compare"), title="Compare", icon=":material/balance:", url_path="compare"),
    ]
    # Each page draws the sidebar (active model and dataset) itself: Streamlit runs a page file
    # directly, without this entry script, for a deep link that is the first request to a
    # fresh server (its legacy pages/ mode; ui.common.through_entry reroutes it) and under
    # AppTest.
    st.session_state[ENTRY] = True
    nav = st.navigation(pages)
    if target := st.session_state.pop(DEEP_LINK, None):
        st.switch_page(target)
    nav.run()


if __name__ == "__main__":      # Streamlit runs its main script as __main__
    main()
