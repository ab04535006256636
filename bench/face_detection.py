"""How often the face crop finds the face (``preprocess.find_face``), how much of each photo the
face covers, and at what cost: on the photos as they are, and put in a room as a camera frames
them (``verification.in_a_room``).

    python bench/face_detection.py ../shared/data/faces/*.zip
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import save, table

from siamese_core.preprocess import find_face
from verification import in_a_room, load


def survey(raw: list[np.ndarray]) -> dict:
    t = time.perf_counter()
    boxes = [find_face(g) for g in raw]
    ms = 1000 * (time.perf_counter() - t) / max(1, len(raw))
    shares = [b[2] * b[3] / g.size for b, g in zip(boxes, raw) if b is not None]
    return {"images": len(raw), "found %": round(100 * len(shares) / max(1, len(raw)), 1),
            "median face share %": round(100 * float(np.median(shares)), 1) if shares else None,
            "ms per image": round(ms, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("zips", type=Path, nargs="+", help="zips of one folder of photos per person")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    rows = []
    for z in a.zips:
        raw = load(z)[0]
        for framing, images in (("as framed", raw), ("in a room", in_a_room(raw, a.seed))):
            rows.append({"zip": z.name, "framing": framing, **survey(images)})
            print(table(rows[-1:], list(rows[-1])), flush=True)
    print(table(rows, list(rows[0])))
    print(f"wrote {save('face_detection', {'rows': rows}, a.out)}")


if __name__ == "__main__":
    main()
