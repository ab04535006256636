"""Streamlit-side helpers shared by the pages: caching and session state (``common``), the
Train page's form and drawing, inputs, uploads, verification and charts. No ML here:
everything calls ``siamese_core``."""
