"""Command line: ``python -m siamese_core pairs|train|evaluate|compare``.

User errors (bad files, images, datasets, weights) exit with code 2 and one line on stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from dataclasses import dataclass
from typing import Any, Callable

from . import distributed
from . import validate as V
from .config import (BLOCKS, LOSSES, PAIRINGS, WIDE_INPUT_ASPECT, WIDE_INPUT_SIZE, TrainConfig,
                     recipe)
from .data import (DEFAULT_DATASET, FACE_SCENE_SHARE, HOLDOUTS, SPLITS, WIDE_INK_ASPECT,
                   few_held_out_note, is_user_spec, load_dataset)
from .errors import SiameseError
from .losses import LOSSES as LOSS_SPECS
from .preprocess import FITS, KINDS, MAX_ASPECT, MAX_INPUT, MIN_INPUT
from .test_time import TEST_TIMES
from .train import Callback, check_classes, load_splits, subsample  # no TensorFlow at import

EXIT_USAGE = 2
# Said where a run starts: the final numbers and every later verdict use it (9x the work).
TTA_NOTE = "; the saved model embeds with test-time augmentation, --test-time none for one pass"


def _cmd_pairs(args) -> int:
    from PIL import Image

    from .pairs import make_pairs, pair_montage

    out = V.writable_file(args.montage, "--montage")
    ds = load_dataset(args.dataset, args.split)
    pairs = make_pairs(ds.labels, args.seed, n_pairs=49)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pair_montage(ds.images, pairs)).save(out)
    except (OSError, ValueError, KeyError) as e:
        raise SiameseError(f"cannot write {out}: {e}") from None
    print(f"wrote {printable(str(out))}: 7x7 montage of {int(pairs.label.sum())} positive and "
          f"{int((1 - pairs.label).sum())} negative pairs from {printable(args.dataset)} ({args.split})")
    return 0


class _ConsoleProgress(Callback):
    """tqdm progress bar with loss, epoch, validation accuracy and ETA."""

    def __init__(self):
        from tqdm import tqdm
        self._tqdm = tqdm
        self.bar = None
        self.val = ""

    def on_train_begin(self, e):
        c = e.config
        size, aspect = c.get("input_size"), float(c.get("input_aspect") or 1)
        inputs = (f", {size}×{round(size * aspect)} inputs (wide; --input-aspect 1 for square)"
                  if aspect > 1 and size else "")
        if c.get("binary_ink"):
            inputs += ", binary ink (no pen darkness; --no-binary-ink for grey levels)"
        if c.get("thin_ink"):
            inputs += ", thin strokes (no pen width; --no-thin-ink for strokes as written)"
        if c.get("pixels"):
            inputs += ", the inputs' pixels beside the network (--no-pixels for it alone)"
        print(f"training on {e.n_train} images, validating on {e.n_val} "
              f"({c['loss']} loss, {c['pairing']} pairing{inputs}"
              f"{TTA_NOTE if c.get('test_time') == 'tta' else ''})", file=sys.stderr)
        self.bar = self._tqdm(total=1000, unit="‰", bar_format="{l_bar}{bar}| {elapsed}<{remaining}"
                              " {postfix}", file=sys.stderr, mininterval=0.5)

    def on_batch_end(self, e):
        self.bar.set_postfix_str(f"epoch {e.epoch} loss {e.loss:.4f}{self.val}", refresh=False)
        self.bar.update(int(e.progress * 1000) - self.bar.n)  # redraws at most every 0.5 s

    def on_epoch_end(self, e):
        self.val = f" val acc {e.metrics['pair_accuracy']:.4f} auc {e.metrics['roc_auc']:.4f}"

    def on_train_end(self, e):
        self.bar.update(1000 - self.bar.n)
        self.bar.close()

    def abort(self) -> None:
        """Training failed: wipe the half-drawn bar, so the error is the only line left."""
        if self.bar is not None:
            self.bar.leave = False
            self.bar.close()


def _filters(text: str) -> tuple[int, ...]:
    try:
        f = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated integers: {text!r}") from None
    if not f or min(f) < 1:
        raise argparse.ArgumentTypeError("filters must be positive integers, e.g. 8,32,64")
    return f


def _checked(check):
    """An argparse type from a ``validate`` check: its one-line message on bad values."""
    def convert(text: str):
        try:
            return check(text)
        except SiameseError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return convert


_seed = _checked(V.seed)
_pairs = _checked(lambda t: V.number("--pairs", t, 10, 1_000_000, integer=True))
_top = _checked(lambda t: V.number("--top", t, 1, 1000, integer=True))
_distance = _checked(lambda t: V.number("--threshold", t, 0, 1000))
_int = _checked(lambda t: V.number("value", t, integer=True))


def _float(text: str) -> float:
    """Any float, nan and inf included: the range is checked where the value is used, with
    its name (``TrainConfig``)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


DATASET_HELP = ("mnist-5k (built in, offline), mnist (downloaded once), fashion-mnist, "
                "idx:DIR (MNIST-format IDX files), folder:DIR or zip:FILE (your images: one "
                "folder of PNG/JPEG images per class, at any depth, e.g. Greek/alpha/1.png)")
SPLIT_HELP = ("train (learned from), val (chose the best epoch and the threshold) or test "
              "(touched by neither)")
WEIGHTS_HELP = "a model's file prefix (PREFIX.json, .onnx, .weights.h5); default: the shipped model"


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Defaults shown where there is one to show; examples kept on their own lines."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text \
                and action.option_strings:
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, exit code 2 (as for every other user error)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"error: {message} (see {self.prog} --help)\n")


@dataclass(frozen=True)
class TrainOption:
    """One ``train`` option: the ``TrainConfig`` field it sets, declared once for the parser,
    ``config_from_args`` and ``command_for``. ``kind`` None: a choice among ``choices``;
    ``bool``: on/off (``--X`` / ``--no-X``). Unset, a field takes the dataset's starting point
    (``config.recipe``); the help names it from there."""

    field: str
    flag: str
    group: str
    help: str
    kind: Callable | None = None
    choices: tuple | None = None
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.flag[2:].replace("-", "_")


def _train_options() -> tuple[TrainOption, ...]:
    n = "network input"
    return (
        TrainOption("holdout", "--holdout", "data", "validation and test hold out images of "
                    "every class or whole classes (new people or characters); auto: classes "
                    "for your data with 6+ classes", choices=HOLDOUTS),
        TrainOption("kind", "--kind", "data", "your images: ink (drawings, characters, "
                    "signatures: ink cut from its background) or photo (faces, objects: grey "
                    "levels kept, lighting evened out); auto: chosen from the images, and with "
                    "it the recipe", choices=("auto",) + KINDS),
        TrainOption("input_size", "--input-size", "data", f"your images: {n} side in pixels "
                    f"({MIN_INPUT}-{MAX_INPUT}); its height, for wide inputs", _int, metavar="PX"),
        TrainOption("input_aspect", "--input-aspect", "data", f"your images: {n} width as a "
                    f"multiple of its height (1-{MAX_ASPECT}; 2: wide images such as signatures "
                    f"keep their shape, the recipe's choice for ink at least "
                    f"{WIDE_INK_ASPECT:g} times as wide as high; with it, turned copies are "
                    f"turned by 180 degrees only)",
                    _float, metavar="W/H"),
        TrainOption("fit", "--fit", "data", "your images: ink: centre its centre of mass in "
                    "20/28 of the frame (MNIST style) or fit its box to the whole frame (wide "
                    "images); photo: the central square or the whole image padded (unset: "
                    "centre, crop)", choices=FITS),
        TrainOption("face_crop", "--face-crop", "data", "your photos: crop each image to its "
                    "face first (photos from a camera or phone, not a face database's framing); "
                    "images without a face are left out. Unset: on when most sampled photos "
                    f"show a face covering under {100 * FACE_SCENE_SHARE:.0f} %% of the photo", bool),
        TrainOption("binary_ink", "--binary-ink", "data", "your ink: every ink pixel at one "
                    "level, the writing's shape without the pen's darkness. Unset: on with skilled "
                    "forgeries (their pens can differ from the genuine ones)", bool),
        TrainOption("thin_ink", "--thin-ink", "data", "your ink: strokes thinned to one pixel, "
                    "the writing's shape without the pen's width. Unset: on with skilled "
                    "forgeries", bool),
        TrainOption("flip", "--flip", "objective", "mirror training images left-right at "
                    "random (faces, objects; not characters)", bool),
        TrainOption("max_train", "--max-train", "data", "subsample the training split (unset: "
                    "all of it)", _int),
        TrainOption("max_val", "--max-val", "data", "subsample the validation (and test) split "
                    "(unset: all of it)", _int),
        TrainOption("loss", "--loss", "objective",
                    "; ".join(f"{name}: {spec.help}" for name, spec in LOSS_SPECS.items()),
                    choices=LOSSES),
        TrainOption("margin", "--margin", "objective", "the loss's margin, a distance in (0, 2] "
                    "between unit-length embeddings (unset: the loss's own)", _float),
        TrainOption("pairing", "--pairing", "objective", "batch: all pairs inside each batch "
                    "(fast); fixed: 1 pos + 1 neg per image", choices=PAIRINGS),
        TrainOption("group_batches", "--group-batches", "objective", "draw each batch's classes "
                    "from one parent folder, e.g. one alphabet, for hard negatives", bool),
        TrainOption("rotated_classes", "--rotated-classes", "objective", "count training images "
                    "turned by 90/180/270 degrees as new classes", bool),
        TrainOption("augment", "--augment", "objective", "random rotations, zooms and shifts of "
                    "the training images", bool),
        TrainOption("test_time", "--test-time", "objective", "tta: the saved model embeds "
                    "each image as the mean over 9 small warps of it (turns, zooms, shifts), "
                    "calibrated so; none: once (9x faster verdicts)", choices=TEST_TIMES),
        TrainOption("pixels", "--pixels", "objective", "the saved model's embedding also "
                    "holds each input's own pixels, the network's distance and theirs each "
                    "weighed by its mean over validation pairs (photos of new people: raw pixels "
                    "see what a short training misses). Unset: on for photos and for ink with "
                    "skilled forgeries", bool),
        TrainOption("forged_share", "--forged-share", "objective", "your signatures with "
                    "skilled forgeries: forged images per genuine one in each batch, forgeries "
                    "of the batch's own people (0 < share <= 4)", _float),
        TrainOption("hard_weight", "--hard-weight", "objective", "with forgeries: the share of "
                    "the loss's weight on different pairs given to a forgery against the "
                    "writing it imitates (0: weighed as any other different pair; up to 0.95; "
                    "bce and contrastive)", _float),
        TrainOption("epochs", "--epochs", "budget", "passes over the training split (unset with "
                    "--seconds: no limit)", _int),
        TrainOption("seconds", "--seconds", "budget", "wall-clock budget", _float),
        TrainOption("batch_size", "--batch-size", "budget", "images per step (class-balanced; "
                    "every pair inside is used)", _int),
        TrainOption("learning_rate", "--lr", "budget", "Adam's peak learning rate, in (0, 1]; "
                    "warm-up then cosine decay", _float),
        TrainOption("seed", "--seed", "budget", "seed of the weights, batches and warps", _seed),
        TrainOption("embedding_dim", "--embedding-dim", "network", "size of the embedding (2 to "
                    "1024)", _int),
        TrainOption("filters", "--filters", "network", "convolution filters per block",
                    _filters, metavar="F1,F2,..."),
        TrainOption("block", "--block", "network", "layer order in a block (conv-bn-pool: "
                    "models trained before the default existed)", choices=BLOCKS),
        TrainOption("top_convs", "--top-convs", "network", "3x3 convolutions on the last pooled "
                    "maps (0: models trained before they existed)", _int),
    )


TRAIN_OPTIONS = _train_options()


def _shown(field: str, value) -> str:
    if field == "filters":
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _starting_points(field: str, library: TrainConfig, yours: dict[str, TrainConfig]) -> str:
    """"(default X; your ink: Y; your photos: Z)" from the library defaults and the recipes,
    not a copy."""
    lib = getattr(library, field)
    if field == "kind":
        return f"(default {lib})"       # each recipe is its kind's: nothing more to say
    if field == "input_aspect":         # chosen from the images' shape (config.recipe)
        return f"(default {_shown(field, lib)}; your wide ink: {_shown(field, WIDE_INPUT_ASPECT)})"
    mine = {kind: getattr(cfg, field) for kind, cfg in yours.items()}
    if lib is None and all(v is None for v in mine.values()):
        return ""            # unset means none: the help says what that does
    parts = [f"default {_shown(field, lib)}"]
    if len(set(map(repr, mine.values()))) == 1:
        if next(iter(mine.values())) != lib:
            parts.append(f"your data: {_shown(field, next(iter(mine.values())))}")
    else:
        parts += [f"your {kind}: {_shown(field, v)}" for kind, v in mine.items()]
    if field == "input_size":           # wide ink's frame (config.recipe)
        parts.append(f"your wide ink: {WIDE_INPUT_SIZE}")
    return f"({'; '.join(parts)})"


def config_from_args(args) -> TrainConfig:
    """The run a ``train`` command line asks for: the dataset's starting point
    (``config.recipe``) with the options given on top."""
    overrides = {o.field: getattr(args, o.dest) for o in TRAIN_OPTIONS}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if args.seconds is not None and args.epochs is None:
        overrides["epochs"] = None           # a time budget alone: no epoch limit
    return recipe(args.dataset, **overrides)


def command_for(cfg: TrainConfig, out: str, dataset: str | None = None) -> str:
    """The ``train`` command line that reproduces ``cfg`` (options the dataset's starting point
    already has are left out), writing to ``out``; ``dataset`` is what the user calls the
    dataset when that is not its spec (an upload: the file they uploaded, not the server's
    copy). The validation cadence is the command's own (the Train page validates by the
    clock, the command every epoch or every 10 s)."""
    import shlex

    # The kind is always written for your data: the command means the same run even where
    # another look at the images would decide otherwise.
    base = recipe(cfg.dataset, kind=cfg.kind)
    parts = ["python", "-m", "siamese_core", "train", "--dataset", dataset or cfg.dataset]
    for o in TRAIN_OPTIONS:
        value = getattr(cfg, o.field)
        if value == getattr(base, o.field) and not (
                o.field == "kind" and value != "auto" and is_user_spec(cfg.dataset)):
            continue
        if o.kind is bool:
            parts.append(o.flag if value else f"--no-{o.flag[2:]}")
        elif value is not None:     # None: no limit; the other bound decides
            parts += [o.flag, _shown(o.field, value) if o.field == "filters" else str(value)]
    return " ".join(shlex.quote(p) for p in parts + ["--out", out])


def _cmd_train(args) -> int:
    # Everything a user can get wrong is checked before the 10-30 s TensorFlow import.
    cfg = config_from_args(args)
    out = V.writable_prefix(args.out, "--out")
    if args.workers is not None:
        if args.distributed:
            raise SiameseError("give --workers N (local processes) or --distributed (one "
                               "worker of a cluster in TF_CONFIG), not both")
        V.number("--workers", args.workers, 1, 16, integer=True)
    V.number("--cluster-timeout", args.cluster_timeout, 0, 7 * 24 * 3600, lo_open=True)
    if args.distributed:
        distributed.read_tf_config()
    if cfg.face_crop:
        print("note: each photo is cropped to its face first (--no-face-crop: the whole photo)",
              file=sys.stderr)
    splits = load_splits(cfg)
    for note in splits[0].notes:
        print(f"note: {printable(note)}", file=sys.stderr)
    train_ds, val_ds = (subsample(splits[0], cfg.max_train, cfg.seed),
                        subsample(splits[1], cfg.max_val, cfg.seed + 1))
    check_classes(train_ds, val_ds, splits[2])
    if args.workers is not None:
        return distributed.launch_local(args.workers, _without_workers(args.argv))

    _import_tensorflow_quietly()
    strategy = None
    if args.distributed:
        # Ctrl-C and SIGTERM end a worker at once: it may wait inside TensorFlow (for the
        # cluster, or in a collective), where Python would never see the signal.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        # The strategy first: collectives cannot be configured once TensorFlow ran anything.
        strategy = distributed.strategy_from_env(args.cluster_timeout)
    from .train import Trainer
    trainer = Trainer(cfg, [], out=out, train_data=train_ds, val_data=val_ds, strategy=strategy,
                      test_data=splits[2])
    progress = _ConsoleProgress()
    if trainer.is_chief:
        trainer.callbacks.append(progress)
    try:
        end = trainer.run()
    except BaseException as e:
        progress.abort()
        import tensorflow as tf
        if isinstance(e, tf.errors.OpError):     # a peer died or hung mid-collective
            raise distributed.DistributedError(
                f"training stopped: another worker failed or cannot be reached "
                f"({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
        raise
    if strategy is not None:
        r = strategy.cluster_resolver
        print(f"{r.task_type} {r.task_id}: {trainer.step} steps, {end.reason}; weights sha256 "
              f"{distributed.weights_digest(trainer.siamese)}")
        if not trainer.is_chief:
            return 0
    m = end.metrics
    on = (", genuine pairs against skilled forgeries" if end.meta.get("calibrated_on") ==
          "skilled forgeries" else "")
    print(f"{end.reason} after {end.epochs_done} epoch(s), {end.elapsed:.1f} s; best epoch "
          f"{end.best_epoch} (validation{on}: pair accuracy {m['pair_accuracy']:.4f}, ROC AUC "
          f"{m['roc_auc']:.4f}, threshold {m['threshold']:.4f})")
    t = end.meta.get("test")
    if t:
        held = (f"{t['n_classes']} classes never seen in training" if end.meta["holdout"] == "class"
                else "every class, images never seen in training")
        band = (f" (95 % interval {t['pair_accuracy_low']:.4f} to {t['pair_accuracy_high']:.4f}"
                f" over the test {t['interval_over']})" if "pair_accuracy_low" in t else "")
        print(f"test ({t['n_images']} images of {held}): pair accuracy {t['pair_accuracy']:.4f}"
              f"{band}, ROC AUC {t['roc_auc']:.4f}, {t['n_way']}-way one-shot {t['one_shot']:.4f}")
        if "far_skilled" in t:
            print(f"test signatures ({t['n_forgeries']} skilled forgeries), at the threshold: "
                  f"false rejects {t['frr']:.2%}, false accepts of skilled forgeries "
                  f"{t['far_skilled']:.2%} and of random ones {t['far_random']:.2%}; equal "
                  f"error rates: skilled {t['eer_skilled']:.2%}, random {t['eer_random']:.2%}")
        r = t.get("references")
        if r:
            from .references import ReferenceRule
            print(f"test against {r['k']} references of the claimed class "
                  f"({ReferenceRule(r['rule']).label}, the rule chosen on validation): false "
                  f"rejects {r['frr']:.2%}, false accepts of {r['against']} {r['far']:.2%}; "
                  f"equal error rate {r['eer']:.2%}")
    splits = end.meta["splits"]
    few = few_held_out_note(end.meta["holdout"], splits["val"]["classes"],
                            splits["test"]["classes"] if "test" in splits else None, t)
    if few:
        print(f"note: {few}")
    print(f"saved {printable(str(out))}.weights.h5, .onnx, .json")
    return 0


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on (escape sequences, bells, new
    lines, bidirectional overrides) written as its Python escape: names from archives and
    paths are printed, never obeyed."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _without_workers(argv: list[str]) -> list[str]:
    """The command line for each worker of ``--workers N``: the same, less that option."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--workers":
            skip = True
        elif not a.startswith("--workers="):
            out.append(a)
    return out


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with the process's stderr pointed at /dev/null: its C++ start-up lines
    (the oneDNN notice and absl's preamble) ignore TF_CPP_MIN_LOG_LEVEL when oneDNN is switched
    on explicitly, and would sit above the progress bar or a one-line error. A failing import
    still raises, after stderr is back."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            try:
                import keras  # noqa: F401
                import tensorflow  # noqa: F401
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _cmd_evaluate(args) -> int:
    from .verdict import SiameseModel, compare_models, evaluate

    model = SiameseModel.load(args.weights)
    other = SiameseModel.load(args.against) if args.against else None
    spec = args.dataset or model.meta.get("dataset", DEFAULT_DATASET)
    holdout = model.meta.get("holdout", "auto") if spec == model.meta.get("dataset") else "auto"
    ds = load_dataset(spec, args.split, holdout, model.prep)
    if len(ds) < 2 or len(set(ds.labels.tolist())) < 2:
        raise SiameseError(f"{spec} ({args.split}) needs images of at least 2 classes")
    r = evaluate(model, ds, n_pairs=args.pairs, seed=args.seed)
    if other is not None:
        r["against"] = {"weights": str(other.prefix),
                        **compare_models(model, other, ds, seed=args.seed)}
    if args.json:
        print(json.dumps(r))
        return 0
    for k, v in r.items():
        if k != "against":
            print(f"{k:>20}: {v:.4f}" if isinstance(v, float)
                  else f"{k:>20}: {printable(str(v))}")
    if other is not None:
        c = r["against"]
        print(f"\nagainst {printable(c['weights'])}, all pairs of {c['n_images']} images: "
              f"{100 * c['accuracy_a']:.2f} % vs {100 * c['accuracy_b']:.2f} %, "
              f"{100 * c['difference']:+.2f} points (95 % interval {100 * c['low']:+.2f} to "
              f"{100 * c['high']:+.2f}): {c['verdict']}")
    return 0


def _cmd_compare(args) -> int:
    from .verdict import SiameseModel

    model = SiameseModel.load(args.weights)
    for p in (args.image_a, args.image_b):
        if not Path(p).is_file():
            raise SiameseError(f"no such file: {p}")
    v = model.compare(Path(args.image_a), Path(args.image_b))
    for p in (args.image_a, args.image_b):
        odd = model.kind_warning(Path(p))
        if odd:
            print(f"note: {printable(Path(p).name)}: {odd}", file=sys.stderr)
            break
    if args.json:
        print(json.dumps(v.to_dict()))
    else:
        print(f"{'same' if v.same else 'different'}: distance {v.distance:.4f} "
              f"(threshold {v.threshold:.4f}), confidence {v.confidence:.1%}")
    return 0


def _gallery(args):
    from .gallery import SUFFIX, Gallery, GalleryError
    from .verdict import SiameseModel

    path = Path(args.gallery)
    if path.suffix != SUFFIX:
        raise GalleryError(f"a gallery file ends in {SUFFIX} (got {printable(path.name)})")
    if not path.parent.is_dir():
        raise GalleryError(f"no such folder: {printable(str(path.parent))}")
    if args.command == "identify" and not path.is_file():
        raise GalleryError(f"no gallery at {printable(str(path))}: enrol someone first "
                           "(python -m siamese_core enrol)")
    return Gallery(path, SiameseModel.load(args.weights))


def _images(files: list[str]) -> list[Path]:
    for f in files:
        if not Path(f).is_file():
            raise SiameseError(f"no such file: {printable(f)}")
    return [Path(f) for f in files]


def _cmd_enrol(args) -> int:
    gallery = _gallery(args)
    images = _images(args.images)
    n = gallery.enrol_images(args.name, images)
    odd = next(filter(None, map(gallery.model.kind_warning, images)), None)
    if odd:
        print(f"note: {odd}", file=sys.stderr)
    names = gallery.names()
    print(f"enrolled {printable(args.name.strip())}: {n} image{'s' * (n != 1)} "
          f"({len(names)} identit{'ies' if len(names) != 1 else 'y'} in "
          f"{printable(gallery.path.name)})")
    return 0


def _cmd_identify(args) -> int:
    gallery = _gallery(args)
    (image,) = _images([args.image])
    odd = gallery.model.kind_warning(image)
    if odd:
        print(f"note: {odd}", file=sys.stderr)
    x = gallery.model.prepare(image)
    if args.name is not None:          # 1:1
        v = gallery.verify(args.name, x, args.threshold)
        if args.json:
            print(json.dumps({"name": args.name, **v.to_dict()}))
        else:
            print(f"{'match' if v.same else 'no match'}: {printable(args.name)} at "
                  f"{gallery.model.references.label} {v.distance:.4f} (threshold "
                  f"{v.threshold:.4f}), confidence "
                  f"{v.confidence:.1%}")
        return 0
    r = gallery.identify(x, args.threshold)
    if args.json:
        print(json.dumps({"name": r.name, "ranking": [{"name": n, **v.to_dict()}
                                                      for n, v in r.ranking]}))
        return 0
    best = r.ranking[0][1]
    print(f"{printable(r.name)}: {gallery.model.references.label} {best.distance:.4f} "
          f"(threshold {best.threshold:.4f}), "
          f"confidence {best.confidence:.1%}" if r.name is not None else
          f"unknown: nobody enrolled within the threshold {best.threshold:.4f} (nearest: "
          f"{printable(r.ranking[0][0])} at {best.distance:.4f})")
    for n, v in r.ranking[:args.top]:
        print(f"  {v.distance:8.4f}  {printable(n)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m siamese_core", description="Siamese networks on image pairs.")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_pairs_parser, _train_parser, _evaluate_parser, _compare_parser,
                _enrol_parser, _identify_parser):
        add(sub)
    return p


def _pairs_parser(sub) -> None:
    s = sub.add_parser("pairs", help="write a 7x7 montage of positive/negative pairs",
                       epilog="example: python -m siamese_core pairs --seed 3 --montage pairs.png",
                       formatter_class=_Formatter)
    s.add_argument("--dataset", default=DEFAULT_DATASET, metavar="SPEC", help=DATASET_HELP)
    s.add_argument("--split", default="train", choices=SPLITS, help=SPLIT_HELP)
    s.add_argument("--seed", type=_seed, default=0, help="which random pairs (0 to 2**32-1)")
    s.add_argument("--montage", required=True, metavar="OUT.png", help="the image to write")
    s.set_defaults(func=_cmd_pairs)


def _train_parser(sub) -> None:
    library = TrainConfig()
    mine = {kind: recipe("folder:x", kind=kind) for kind in KINDS}

    def differs(cfg: TrainConfig) -> str:
        return ", ".join(f"{o.flag} {_shown(o.field, getattr(cfg, o.field))}"
                         for o in TRAIN_OPTIONS if o.field != "kind"
                         and getattr(cfg, o.field) != getattr(library, o.field))
    s = sub.add_parser(
        "train", help="train a siamese network and save it", formatter_class=_Formatter,
        description="Train a siamese network. Built-in datasets start from the library's "
                    "defaults; your own\nimages (folder:/zip:) from the recipe measured for new "
                    "classes of their kind\n(--kind auto looks at the images), which differs "
                    "in:\n  ink: " + differs(mine["ink"]) + "\n  photo: " + differs(mine["photo"])
                    + ".\nOptions given override either.",
        epilog="examples:\n  python -m siamese_core train --seconds 60 --out runs/mine\n"
               "  python -m siamese_core train --dataset zip:signatures.zip --out "
               "runs/signatures\n  python -m siamese_core train --loss triplet --epochs 20 "
               "--out runs/triplet\n  python -m siamese_core train --workers 2 --epochs 5 "
               "--out runs/two")
    groups = {name: s.add_argument_group(name) for name in
              ("data", "objective", "budget", "network", "output and distribution")}
    groups["data"].add_argument("--dataset", default=DEFAULT_DATASET, metavar="SPEC",
                                help=DATASET_HELP)
    for o in TRAIN_OPTIONS:
        kw: dict[str, Any] = dict(default=None,
                                  help=f"{o.help} {_starting_points(o.field, library, mine)}".rstrip())
        if o.kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif o.choices is not None:
            kw["choices"] = o.choices
        else:
            kw["type"] = o.kind
        if o.metavar:
            kw["metavar"] = o.metavar
        groups[o.group].add_argument(o.flag, **kw)
    g = groups["output and distribution"]
    g.add_argument("--out", required=True, metavar="PREFIX",
                   help="writes PREFIX.weights.h5, PREFIX.onnx and PREFIX.json")
    g.add_argument("--distributed", action="store_true",
                   help="run as one worker of a multi-worker training (tf.distribute): the "
                        "cluster and this worker's place in it come from TF_CONFIG; worker 0 "
                        "(or the chief) saves the model")
    g.add_argument("--cluster-timeout", type=_float, default=distributed.CLUSTER_TIMEOUT_S,
                   metavar="SECONDS", help="--distributed: how long to wait for the other "
                                           "workers to start")
    g.add_argument("--workers", type=_int, default=None, metavar="N",
                   help="start N local --distributed workers on 127.0.0.1 (a one-machine demo "
                        "of multi-worker training)")
    s.set_defaults(func=_cmd_train)


def _evaluate_parser(sub) -> None:
    s = sub.add_parser("evaluate", help="pair accuracy, ROC AUC, EER and one-shot accuracy",
                       epilog="example: python -m siamese_core evaluate --weights runs/mine "
                              "--against weights/default",
                       formatter_class=_Formatter)
    s.add_argument("--weights", default=None, metavar="PREFIX", help=WEIGHTS_HELP)
    s.add_argument("--dataset", default=None, metavar="SPEC",
                   help=DATASET_HELP + " (default: the model's own dataset)")
    s.add_argument("--split", default="test", choices=SPLITS, help=SPLIT_HELP)
    s.add_argument("--pairs", type=_pairs, default=10_000,
                   help="balanced random pairs to measure (10 to 1,000,000)")
    s.add_argument("--seed", type=_seed, default=0, help="which random pairs and episodes")
    s.add_argument("--against", default=None, metavar="PATH",
                   help="a second model: is --weights significantly better or worse than it on "
                        "these images? (all pairs, bootstrap over the images)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_cmd_evaluate)


def _compare_parser(sub) -> None:
    s = sub.add_parser("compare", help="same or different? for two image files",
                       epilog="example: python -m siamese_core compare a.png b.png --json",
                       formatter_class=_Formatter)
    s.add_argument("--weights", default=None, metavar="PREFIX", help=WEIGHTS_HELP)
    s.add_argument("image_a", help="PNG, JPEG, BMP, GIF, WebP or TIFF; any size, either polarity")
    s.add_argument("image_b", help="the image to compare it with")
    s.add_argument("--json", action="store_true",
                   help="print distance, same, confidence and threshold as JSON")
    s.set_defaults(func=_cmd_compare)


GALLERY_HELP = ("the gallery file (NAME.sqlite): enrolled identities and their embeddings, for "
                "one model")


def _enrol_parser(sub) -> None:
    s = sub.add_parser("enrol", help="add a person (or any identity) to a gallery from a few "
                                     "images, without retraining",
                       epilog="example: python -m siamese_core enrol --gallery people.sqlite "
                              "--weights runs/faces --name Ada ada1.jpg ada2.jpg",
                       formatter_class=_Formatter)
    s.add_argument("--gallery", required=True, metavar="FILE.sqlite",
                   help=GALLERY_HELP + "; created when missing")
    s.add_argument("--weights", default=None, metavar="PREFIX", help=WEIGHTS_HELP)
    s.add_argument("--name", required=True, help="who the images show (a new name or one "
                                                  "enrolled before: the images join it)")
    s.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG, BMP, GIF, WebP or TIFF")
    s.set_defaults(func=_cmd_enrol)


def _identify_parser(sub) -> None:
    s = sub.add_parser("identify", help="who is in this image? (1:N against a gallery, or 1:1 "
                                        "with --name)",
                       epilog="examples:\n  python -m siamese_core identify --gallery "
                              "people.sqlite --weights runs/faces who.jpg\n  python -m "
                              "siamese_core identify --gallery people.sqlite --weights "
                              "runs/faces --name Ada who.jpg",
                       formatter_class=_Formatter)
    s.add_argument("--gallery", required=True, metavar="FILE.sqlite", help=GALLERY_HELP)
    s.add_argument("--weights", default=None, metavar="PREFIX",
                   help=WEIGHTS_HELP + " (the gallery's own model)")
    s.add_argument("image", help="the questioned image")
    s.add_argument("--name", default=None, help="verify against this identity only (1:1)")
    s.add_argument("--threshold", type=_distance, default=None, metavar="DISTANCE",
                   help="accept at or under this distance (default: the model's calibrated one)")
    s.add_argument("--top", type=_top, default=5, metavar="K",
                   help="how many of the nearest identities to list")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_cmd_identify)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except SiameseError as e:
        print(f"error: {printable(str(e))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
