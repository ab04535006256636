"""Uploads that cannot take the page down or pile up in the server's memory."""
from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitAPIException

from siamese_core.archive import IMAGE_SUFFIXES   # the images a dataset archive may hold

# Every file_uploader of the app takes one of these: anything else is refused at upload time.
ARCHIVE_SUFFIXES = (".zip",)
GALLERY_SUFFIXES = (".sqlite",)      # an exported gallery (Compare → Gallery → Import)
UPLOAD_SUFFIXES = IMAGE_SUFFIXES + ARCHIVE_SUFFIXES + GALLERY_SUFFIXES
# Images: 5 MB each; an archive of the user's dataset: 50 MB (server.maxUploadSize, the largest).
MAX_IMAGE_MB, MAX_ARCHIVE_MB = 5, 50
MAX_GALLERY_MB = 32                  # siamese_core.gallery.MAX_IMPORT_BYTES
# A camera frame (Streamlit names it camera-input-<time>.jpg): a phone's can pass 5 MB. It may be
# 20 MB; the upload manager takes it up to MAX_ARCHIVE_MB so that the page, not a silent HTTP
# 413 the camera widget never shows, says why a larger one is refused.
CAMERA_PREFIX, MAX_CAMERA_MB = "camera-input-", 20
# Per browser session, files held by Streamlit's upload manager (Compare's two sides need two;
# direct upload requests that no widget ever claims would otherwise stay until the session ends).
# Archives and galleries are counted apart: at most one of each, the newest.
MAX_FILES_PER_SESSION = 4
MAX_BYTES_PER_SESSION = 12 * 1024 * 1024
MAX_ARCHIVES_PER_SESSION = 1
# Datasets one session keeps on the server's disk (a newer upload deletes the oldest).
MAX_UPLOADS_PER_SESSION = 3


M_MMAP_THRESHOLD = -3      # glibc's mallopt parameter
_malloc_tuned = False


def release_large_buffers() -> None:
    """Make glibc give large freed buffers back to the system. By default its mmap threshold
    rises to the size of the largest block freed (up to 32 MB), after which decoded images
    (16-64 MB each) come from arenas that are never trimmed: the server's memory only grows.
    A fixed 1 MB threshold (this also turns the dynamic rise off) keeps it bounded. Once per
    process; a no-op off glibc."""
    global _malloc_tuned
    if _malloc_tuned:
        return
    _malloc_tuned = True
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, 1 << 20)
    except (OSError, AttributeError):
        pass


def cap_session_uploads(max_files: int = MAX_FILES_PER_SESSION,
                        max_bytes: int = MAX_BYTES_PER_SESSION,
                        suffixes: tuple[str, ...] = UPLOAD_SUFFIXES) -> None:
    """Guard Streamlit's in-memory upload manager, once per server (a no-op where there is none,
    e.g. AppTest):

    - a file whose name does not end in one of ``suffixes`` (or holds a NUL) is refused with
      HTTP 400 before it is stored. Streamlit checks the extension only when the next script run
      starts, before any page code, and raises there: the session was stuck on an exception;
    - after each upload, the oldest files of that session beyond ``max_files`` / ``max_bytes``
      are dropped, so direct upload requests cannot park unbounded data in memory."""
    try:
        from streamlit.runtime import Runtime
        mgr = Runtime.instance().uploaded_file_mgr if Runtime.exists() else None
    except (ImportError, RuntimeError, AttributeError):
        return
    guard_upload_manager(mgr, max_files, max_bytes, suffixes)


def guard_upload_manager(mgr, max_files: int = MAX_FILES_PER_SESSION,
                         max_bytes: int = MAX_BYTES_PER_SESSION,
                         suffixes: tuple[str, ...] = UPLOAD_SUFFIXES) -> None:
    """Install ``cap_session_uploads``'s checks on one upload manager (once)."""
    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager

    if not isinstance(mgr, MemoryUploadedFileManager) or getattr(mgr, "_siamese_capped", False):
        return
    add = mgr.add_file

    def add_file(session_id, file) -> None:
        from starlette.exceptions import HTTPException
        name = str(file.name or "").lower()
        if "\0" in name or not name.endswith(suffixes):
            raise HTTPException(status_code=400, detail="file type not accepted")
        limit = (MAX_ARCHIVE_MB if name.endswith(ARCHIVE_SUFFIXES) or name.startswith(CAMERA_PREFIX)
                 else MAX_GALLERY_MB if name.endswith(GALLERY_SUFFIXES) else MAX_IMAGE_MB)
        if len(file.data) > limit * 1024 * 1024:
            raise HTTPException(status_code=413, detail="file too large")
        add(session_id=session_id, file=file)
        with mgr._lock:
            files = list(mgr.file_storage.get(session_id, {}).values())   # oldest first
        drop = []
        for wanted, n_max, b_max in ((IMAGE_SUFFIXES, max_files, max_bytes),
                                     (ARCHIVE_SUFFIXES, MAX_ARCHIVES_PER_SESSION, None),
                                     (GALLERY_SUFFIXES, 1, None)):
            kind = [f for f in files if str(f.name).lower().endswith(wanted)]
            total = sum(len(f.data) for f in kind)
            while len(kind) > 1 and (len(kind) > n_max or (b_max and total > b_max)):
                old = kind.pop(0)
                total -= len(old.data)
                drop.append(old.file_id)
        for fid in drop:
            mgr.remove_file(session_id, fid)

    mgr.add_file = add_file
    mgr._siamese_capped = True


def file_uploader(label: str, types: list[str], key: str, help: str | None = None,
                  max_mb: int = MAX_IMAGE_MB):
    """``st.file_uploader`` that answers a refused file (Streamlit raises on an extension outside
    ``types``, e.g. a request renamed in flight) with a one-line message and a fresh, empty
    uploader instead of an exception. Returns (file or None, message or None)."""
    gen_key, msg_key = f"_{key}_generation", f"_{key}_refused"
    gen = st.session_state.get(gen_key, 0)
    try:
        f = st.file_uploader(label, type=types, key=key if gen == 0 else f"{key}_{gen}", help=help,
                             max_upload_size=max_mb)
    except StreamlitAPIException:
        st.session_state[gen_key] = gen + 1
        st.session_state[msg_key] = (f"That file was refused: upload a "
                                     f"{', '.join(t.upper() for t in types)} file.")
        st.rerun()
    return f, st.session_state.pop(msg_key, None) if f is None else None


def reset_uploader(key: str) -> None:
    """Empty a ``file_uploader`` (a new widget replaces it on the next run)."""
    gen_key = f"_{key}_generation"
    st.session_state[gen_key] = st.session_state.get(gen_key, 0) + 1
