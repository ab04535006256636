"""The Streamlit app over ``siamese_core``: ``app.py`` (navigation), ``pages/`` (thin page
scripts) and ``ui/`` (Streamlit helpers). Start it with ``siamese-studio`` (from a checkout:
``streamlit run app.py``); importing this package imports neither Streamlit nor TensorFlow."""
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"
