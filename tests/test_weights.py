import os

from siamese_core import weights as W

def test_files_follow_the_umask(tmp_path):
    """A CLI user's models are readable by others (umask 022); a server's workers run with umask
    077 and write private files."""
    old = os.umask(0o077)
    try:
        W.atomic_write_text(tmp_path / "private.json", "{}")
    finally:
        os.umask(old)
    os.umask(0o022)
    try:
        W.atomic_write_text(tmp_path / "shared.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "private.json").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "shared.json").stat().st_mode & 0o777 == 0o644


def test_download_zip_holds_the_three_files(tmp_path):
    import zipfile
    from io import BytesIO

    from siamese_core import weights as W
    z = zipfile.ZipFile(BytesIO(W.zip_bytes(W.default_prefix())))
    assert sorted(z.namelist()) == ["default.json", "default.onnx", "default.weights.h5"]
    for p in W.paths(W.default_prefix()).values():
        assert z.read(p.name) == p.read_bytes()
