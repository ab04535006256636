"""Siamese networks on image pairs: pairs, training, calibrated same/different verdicts.

Importing this package (and ``SiameseModel``) never imports TensorFlow: training modules
(``siamese_core.train``, ``.model``, ``.losses``) load it on demand.
"""
from .data import Dataset, load_dataset
from .errors import DataError, ImageError, SiameseError, WeightsError
from .pairs import DIFFERENT, SAME, Pairs, make_pairs
from .preprocess import preprocess
from .verdict import SiameseModel, Verdict

__all__ = ["Dataset", "load_dataset", "DataError", "ImageError", "SiameseError", "WeightsError",
           "DIFFERENT", "SAME", "Pairs", "make_pairs", "preprocess", "SiameseModel", "Verdict"]
__version__ = "0.1.0"
