"""Streamlit-side helpers shared by the pages: caching, session state, small renderers.
No ML here: everything calls ``siamese_core``."""
