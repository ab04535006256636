"""Siamese pairs studio from a checkout: ``streamlit run app.py``. The app is the package
``siamese_studio`` (installed, its command is ``siamese-studio``); its server settings are
``siamese_studio/.streamlit/config.toml``, which ``.streamlit`` here links to."""
from siamese_studio.app import main

main()
