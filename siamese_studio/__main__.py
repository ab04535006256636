"""``siamese-studio [streamlit options]`` = ``streamlit run <installed app.py> [options]``.

The installed app's command (a checkout runs ``streamlit run app.py``, the same app): the
server settings live in ``.streamlit/config.toml`` beside this package's ``app.py``, which
Streamlit reads as the script's own configuration wherever the command is started."""
from __future__ import annotations

import sys

from siamese_studio import APP


def main(argv: list[str] | None = None) -> None:
    """Run the app's Streamlit server in this process; ``argv`` are extra ``streamlit run``
    options (``--server.port 8502``, ``--server.address 0.0.0.0``…)."""
    try:
        from streamlit.web import cli
    except ImportError:
        sys.exit("siamese-studio: Streamlit is not installed; "
                 "pip install 'siamese-pairs-studio[app]'")
    args = sys.argv[1:] if argv is None else argv
    cli.main(args=["run", str(APP), *args], prog_name="streamlit")


if __name__ == "__main__":
    main()
