"""Siamese networks on image pairs: pairs, training, calibrated same/different verdicts.

Importing this package (and ``SiameseModel``) never imports TensorFlow: training modules
(``siamese_core.train``, ``.model``, ``.losses``) load it on demand.
"""
import os as _os

# oneDNN kernels are not switched on by default on every x86 CPU (they were off on the AMD EPYC
# this was measured on), and they make a training step ~25 % faster there (BENCHMARKS.md).
# Must be set before TensorFlow is first imported; an explicit user setting wins.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# TensorFlow's C++ log lines (warnings included) would land around progress bars and one-line
# errors; the package says what matters itself. An explicit user setting wins.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from .data import Dataset, load_dataset
from .errors import DataError, ImageError, SiameseError, WeightsError
from .pairs import DIFFERENT, SAME, Pairs, make_pairs
from .preprocess import preprocess
from .verdict import SiameseModel, Verdict

__all__ = ["Dataset", "load_dataset", "DataError", "ImageError", "SiameseError", "WeightsError",
           "DIFFERENT", "SAME", "Pairs", "make_pairs", "preprocess", "SiameseModel", "Verdict"]
__version__ = "0.2.0"
