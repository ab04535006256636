"""Siamese pairs studio: browse pairs, train live, compare digits. Run: streamlit run app.py"""
import streamlit as st

st.set_page_config(page_title="Siamese pairs studio", page_icon="👯", layout="wide")

from ui.common import sidebar  # noqa: E402  (after set_page_config)

pages = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/explorer.py", title="Pair explorer", icon="🧩", url_path="explorer"),
    st.Page("pages/train.py", title="Train", icon="🏋️", url_path="train"),
    st.Page("pages/compare.py", title="Compare", icon="⚖️", url_path="compare"),
]
nav = st.navigation(pages)
sidebar()
nav.run()
