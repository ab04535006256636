"""The Train page's form: its fields from a config, and a config from its fields (Streamlit)."""
from __future__ import annotations

from dataclasses import replace

import streamlit as st

from siamese_core.config import LOSSES, PAIRINGS, TrainConfig, demo_config, recipe
from siamese_core.data import HOLDOUTS, is_user_spec
from siamese_core.preprocess import KIND_FITS
from siamese_core.losses import LOSSES as LOSS_SPECS

DEFAULT = demo_config()
MAX_EPOCHS = 10_000  # the form's ceiling
EPOCHS = "Epochs (0 = no limit)"    # 0: the time budget alone ends the run (the recipe's way)
FORM = "train_form_values"   # the last submitted values: widgets forget theirs on page switch


def form_values(c: TrainConfig) -> dict:
    """The form's fields for a training config (the defaults, or a reloaded run's own)."""
    return {"dataset": c.dataset, "loss": c.loss, "margin": float(c.margin or 0.0),
            "dim": c.embedding_dim, "epochs": c.epochs or 0,
            "seconds": int(c.seconds or DEFAULT.seconds), "batch": c.batch_size,
            "lr": c.learning_rate, "max_train": c.max_train or 0, "pairing": c.pairing,
            "augment": c.augment, "seed": c.seed, "holdout": c.holdout,
            "input_size": c.input_size, "fit": c.prep.fit, "rotated": c.rotated_classes,
            "grouped": c.group_batches, "kind": c.prep.kind, "flip": c.flip,
            "face": c.face_crop, "aspect": float(c.input_aspect), "tta": c.test_time == "tta",
            "binary": c.binary_ink, "thin": c.thin_ink, "pixels": c.pixels}


def base_config(spec: str, kind: str | None = None) -> TrainConfig:
    """What a run on ``spec`` starts from: the page's quick demo on the built-in datasets, the
    measured recipe for new classes of the images' kind on the user's own (``kind`` None: the
    kind ``data.dataset_kind`` sees in them)."""
    return recipe(spec, kind=kind) if is_user_spec(spec) else replace(DEFAULT, dataset=spec)


def config_from_form(spec: str, v: dict) -> TrainConfig:
    """The run the submitted fields ask for (``DataError`` on values out of range)."""
    base = base_config(spec, v.get("kind"))
    return replace(base, loss=v["loss"], margin=float(v["margin"]) or None,
                   embedding_dim=int(v["dim"]), epochs=int(v["epochs"]) or None,
                   seconds=float(v["seconds"]), batch_size=int(v["batch"]),
                   learning_rate=float(v["lr"]), pairing=v["pairing"],
                   augment=bool(v["augment"]), seed=int(v["seed"]),
                   max_train=int(v["max_train"]) or None, holdout=v["holdout"],
                   input_size=int(v.get("input_size", base.input_size)),
                   input_aspect=float(v.get("aspect", base.input_aspect)),
                   # the kind's default stays "default" (None), as the recipe has it
                   fit=base.fit if v.get("fit", base.prep.fit) == base.prep.fit else v["fit"],
                   rotated_classes=bool(v.get("rotated", False)),
                   group_batches=bool(v.get("grouped", False)), flip=bool(v.get("flip", False)),
                   face_crop=bool(v.get("face", False)) and base.prep.kind == "photo",
                   binary_ink=bool(v.get("binary", base.binary_ink)) and base.prep.kind == "ink",
                   thin_ink=bool(v.get("thin", base.thin_ink)) and base.prep.kind == "ink",
                   test_time="tta" if v.get("tta", base.test_time == "tta") else "none",
                   pixels=bool(v.get("pixels", base.pixels)))


# Input shapes offered (width / height): wide images such as signatures keep their shape.
ASPECTS = (1.0, 1.5, 2.0, 3.0)
ASPECT_LABELS = {1.0: "square", 1.5: "3:2 wide", 2.0: "2:1 wide", 3.0: "3:1 wide"}

FIT_LABELS = {"centre": "centre the ink", "box": "fill the frame",
              "crop": "central square", "pad": "whole image"}
FIT_HELP = {"ink": "Both crop to the ink. Centre: scaled into the middle, centred on its mass (as "
                   "MNIST was made). Fill: the whole box, aspect kept (wide images, e.g. "
                   "signatures).",
            "photo": "Nothing is squeezed. Central square: the middle of the photo (a face in a "
                     "portrait). Whole image: all of it, the sides padded with its own edge."}


def train_form(spec: str, d: dict, running: bool) -> tuple[bool, dict]:
    """Draw the form with the values ``d`` (``d["kind"]``: the kind of images, chosen above the
    form); returns (submitted, the fields' values)."""
    # Enter in a number field must not start a run: only the Train button does (issue 24, 4).
    with st.form("train_form", enter_to_submit=False):
        c1, c2, c3, c4 = st.columns(4)
        v = {"dataset": spec, "kind": d.get("kind", "ink")}
        v["holdout"] = c1.selectbox(
            "Hold out", HOLDOUTS, index=HOLDOUTS.index(d["holdout"]),
            format_func={"auto": f"auto ({'classes if ≥ 6' if is_user_spec(spec) else 'images'})",
                         "image": "images of every class", "class": "whole classes"}.get,
            help="What validation and test hold out: images of classes seen in training, or whole "
                 "classes never seen (what verifying new people or characters needs). auto: whole "
                 "classes on your data when it has 6 or more, images otherwise.")
        v["loss"] = c2.selectbox("Loss", LOSSES, index=LOSSES.index(d["loss"]),
                                 help=" · ".join(f"{n}: {s.help}" for n, s in LOSS_SPECS.items()))
        margins = ", ".join(f"{n} {s.default_margin}" if s.default_margin else f"{n} none"
                            for n, s in LOSS_SPECS.items())
        v["margin"] = c3.number_input(
            "Margin (0 = the loss's default)", 0.0, 2.0, d["margin"], 0.1,
            help=f"Embeddings have unit length, so distances lie in [0, 2]. Defaults: {margins}")
        v["dim"] = c4.select_slider("Embedding size", [8, 16, 32, 64, 128], d["dim"])
        c1, c2, c3, c4 = st.columns(4)
        v["epochs"] = c1.number_input(EPOCHS, 0, MAX_EPOCHS, d["epochs"])
        v["seconds"] = c2.number_input("Time budget (s)", 5, 1800, d["seconds"],
                                       help="Training stops at the epochs or the budget, whichever "
                                            "comes first. The budget counts from the click: if the "
                                            "training process is still loading TensorFlow, that "
                                            "wait comes off it.")
        b = DEFAULT.batch_size
        v["batch"] = c3.select_slider("Batch size", [20, 50, 100, 200, 400], d["batch"],
                                      help=f"Every pair inside a batch is used: {b} images → "
                                           f"{b * (b - 1) // 2:,} pairs.")
        v["lr"] = c4.select_slider("Learning rate", [3e-4, 1e-3, 3e-3, 6e-3, 1e-2], d["lr"])
        c1, c2, c3, c4 = st.columns(4)
        v["max_train"] = c1.number_input("Training images (0 = all)", 0, 60_000, d["max_train"],
                                         100, help="Fewer images train faster (a quick look).")
        v["pairing"] = c2.selectbox("Pairs", PAIRINGS, index=PAIRINGS.index(d["pairing"]),
                                    format_func={"batch": "all pairs in each batch (fast)",
                                                 "fixed": "1 pos + 1 neg per image (seed)"}.get)
        v["augment"] = c3.toggle("Augmentation", d["augment"],
                                 help="small random shifts, rotations and zooms, eased in over the "
                                      f"first {DEFAULT.augment_warmup * 100:.0f} % of the run")
        v["seed"] = c4.number_input("Seed", 0, 1_000_000, d["seed"])
        if is_user_spec(spec):
            c1, c2, c3, c4, c5 = st.columns(5)
            sizes = sorted({28, 32, 40, 48, 56, 64, int(d["input_size"])})
            v["input_size"] = c1.select_slider("Input size (px)", sizes, int(d["input_size"]), help="Larger keeps finer detail, "
                                               "and costs time per step.")
            aspect = float(d.get("aspect", 1.0))
            shapes = ASPECTS if aspect in ASPECTS else ASPECTS + (aspect,)
            v["aspect"] = c1.selectbox(
                "Input shape", shapes, index=shapes.index(aspect),
                format_func=lambda a: ASPECT_LABELS.get(a, f"{a:g}:1 wide"),
                help="Wide images (signatures, ~2:1) squeezed into a square keep half their "
                     "height; a wide frame keeps their shape. The recipe makes it 2:1 when "
                     "the ink is wide (Your data says so). Turned copies are then turned "
                     "by 180° only.")
            fits = KIND_FITS[v["kind"]]
            v["fit"] = c2.selectbox("Fit", fits, index=fits.index(d["fit"]) if d["fit"] in fits
                                    else 0, format_func=FIT_LABELS.get, help=FIT_HELP[v["kind"]])
            v["flip"] = c5.toggle("Mirrored", d.get("flip", False),
                                  help="Training images mirrored left-right at random: a face "
                                       "mirrored is the same face; a character mirrored may be "
                                       "another.")
            v["tta"] = c5.toggle("Test-time augmentation", d.get("tta", False),
                                 help="The model embeds each image as the mean over 9 small "
                                      "turns, zooms and shifts of it, here and in Compare, and "
                                      "its threshold is calibrated so: on new alphabets, "
                                      "writers and faces 0.5–3 points better in every fold "
                                      "measured (BENCHMARKS.md), 9× the work per verdict.")
            v["pixels"] = c4.toggle(
                "Pixels too", d.get("pixels", False),
                help="The saved model's embedding also holds each input's own pixels, the "
                     "network's distance and theirs each weighed by its typical size on the "
                     "validation images: on faces of people never seen, raw pixels catch what a "
                     "few minutes of training miss (BENCHMARKS.md). On by default for photos and "
                     "for signatures with skilled forgeries.")
            v["rotated"] = c3.toggle("Turned copies", d["rotated"],
                                     help="Each training image turned by 90°, 180° and 270° counts "
                                          "as three more classes (turned copies as new classes): "
                                          "4× the classes to tell apart.")
            v["grouped"] = c4.toggle("Hard negatives by folder", d["grouped"],
                                     help="Each batch takes its classes from one parent folder "
                                          "(e.g. one alphabet), so the pairs to tell apart are the "
                                          "hard ones.")
            if v["kind"] == "ink":
                v["binary"] = c2.toggle(
                    "Binary ink", d.get("binary", False),
                    help="Every ink pixel at one level, here and in Compare: the network sees "
                         "the writing's shape, not the pen's darkness. On by default with "
                         "skilled forgeries, whose pens can differ from the genuine ones (in "
                         "the 64-writer signatures they are darker: with grey levels a network "
                         "learnt that instead of the writing, BENCHMARKS.md).")
                v["thin"] = c3.toggle(
                    "Thin strokes", d.get("thin", False),
                    help="Every stroke thinned to one pixel, here and in Compare: the network "
                         "sees where the pen went, not how wide it drew. On by default with "
                         "skilled forgeries (in the 64-writer signatures the forgers' pens are "
                         "also thinner: the width alone told forged from genuine as well as "
                         "HOG did, BENCHMARKS.md).")
            if v["kind"] == "photo":
                v["face"] = st.toggle(
                    "Crop to the face", d.get("face", False),
                    help="Each photo cropped to its face first, here and in Compare "
                         "(OpenCV's face detector): for photos from a camera or a phone. A face "
                         "database's tight crops need none. Photos without a face are left out "
                         "of training; in Compare they get \"no face found\", not a verdict.")
        submitted = st.form_submit_button("Train", icon=":material/play_arrow:", type="primary",
                                          disabled=running)
    return submitted, v
