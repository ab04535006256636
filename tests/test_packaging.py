"""The library as a package: a wheel with the shipped model inside, installed in a fresh
environment outside the checkout, runs its console script (issue 16, packaging)."""
import json
import subprocess
import zipfile

import pytest


from tests.conftest import ROOT


def test_wheel_holds_the_library_its_model_and_the_app(wheel):
    import siamese_core
    names = zipfile.ZipFile(wheel).namelist()
    assert wheel.name.startswith(f"siamese_pairs_studio-{siamese_core.__version__}-")
    for f in ("default.json", "default.onnx", "default.weights.h5"):
        assert f"siamese_core/default_model/{f}" in names
    assert "siamese_core/cli.py" in names and "siamese_core/py.typed" in names
    pages = {p.name for p in (ROOT / "siamese_studio" / "pages").glob("*.py")}
    assert {n.split("/")[-1] for n in names if n.startswith("siamese_studio/pages/")} == pages
    for f in ("app.py", "__main__.py", "ui/common.py", ".streamlit/config.toml"):
        assert f"siamese_studio/{f}" in names
    assert not [n for n in names if n.split("/")[0] in ("tests", "pages", "bench", "ui", "weights")]
    meta = next(n for n in names if n.endswith("entry_points.txt"))
    entry_points = zipfile.ZipFile(wheel).read(meta).decode()
    assert "siamese = siamese_core.cli:main" in entry_points
    assert "siamese-studio = siamese_studio.__main__:main" in entry_points


def test_installed_wheel_compares_with_its_packaged_model(installed, tmp_path, digit_pngs):
    """The console script of the installed wheel, run from a folder outside the checkout."""
    venv = installed
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import siamese_core, siamese_core.weights as w; "
                            "print(siamese_core.__file__); print(w.default_prefix())"],
                           cwd=work, capture_output=True, text=True, timeout=120)
    module, prefix = where.stdout.split()
    assert module.startswith(str(venv)) and prefix.startswith(str(venv))
    assert prefix.endswith("siamese_core/default_model/default")
    r = subprocess.run([str(venv / "bin" / "siamese"), "compare", str(digit_pngs["three_a"]),
                        str(digit_pngs["three_b"]), "--json"], cwd=work, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["same"] is True


def test_requirements_txt_is_the_packages_dependencies():
    """A checkout installs requirements.txt, the wheel its metadata: the same requirements in
    both (the core, training and the app), so neither drifts from the other."""
    tomllib = pytest.importorskip("tomllib")                # Python 3.11+
    from packaging.requirements import Requirement
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text()
             .splitlines()]
    txt = {str(Requirement(line)) for line in lines if line}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    declared = {str(Requirement(r)) for r in
                [*project["dependencies"], *extras["train"], *extras["app"]]}
    assert txt == declared, (txt - declared, declared - txt)


def test_the_app_command_without_streamlit_says_what_to_install():
    """``siamese-studio`` where only the core is installed: one line naming the extra, no
    traceback."""
    import subprocess
    import sys
    code = ("import sys; sys.modules['streamlit'] = None; "      # import streamlit fails
            "from siamese_studio.__main__ import main; main([])")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip() == ("siamese-studio: Streamlit is not installed; "
                                "pip install 'siamese-pairs-studio[app]'")


def test_siamese_core_has_no_import_cycle():
    """Issue 22: config, data and preprocess imported one another (inside functions, to dodge
    the cycle). Every import between the package's modules, function-level ones included,
    forms a graph without a cycle: constants live with their owner."""
    import ast
    from pathlib import Path

    pkg = Path(__file__).parents[1] / "siamese_core"
    graph: dict[str, set[str]] = {}
    for f in pkg.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps |= ({node.module.split(".")[0]} if node.module
                         else {a.name for a in node.names})
        graph[f.stem] = deps - {f.stem}

    def path_back(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for dep in graph.get(node, ()):
                if dep == start:
                    return path + [dep]
                if dep not in path:
                    stack.append((dep, path + [dep]))
        return None
    cycles = [c for c in map(path_back, sorted(graph)) if c]
    assert not cycles, " ; ".join(" -> ".join(c) for c in cycles)
