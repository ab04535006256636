"""Siamese pairs studio: browse pairs, train live, compare images. Run: python -m siamese_studio"""
import streamlit as st

from siamese_studio.ui.common import DEEP_LINK, ENTRY

st.set_page_config(page_title="Siamese pairs studio", page_icon=":material/compare:", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/your_data.py", title="Your data", icon=":material/upload_file:",
            url_path="your-data"),
    st.Page("pages/explorer.py", title="Pair explorer", icon=":material/grid_view:", url_path="explorer"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page("pages/compare.py", title="Compare", icon=":material/balance:", url_path="compare"),
]
# Each page draws the sidebar (active model and dataset) itself: Streamlit runs a page file
# directly, without this entry script, for a deep link that is the first request to a fresh
# server (its legacy pages/ mode; ui.common.through_entry reroutes it) and under AppTest.
st.session_state[ENTRY] = True
nav = st.navigation(pages)
if target := st.session_state.pop(DEEP_LINK, None):
    st.switch_page(target)
nav.run()
