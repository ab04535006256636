"""Streamlit-side helpers shared by the pages: caching, session state, small renderers
(``common``), and ``harness``: the app under a real browser, for tests and benchmarks.
No ML here: everything calls ``siamese_core``."""
