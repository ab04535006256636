"""Skilled forgeries (issue 21, item 3): recognised in the usual layouts, kept as negatives of
their person, never a class; the rates signature verification reports."""
import numpy as np
import pytest

from siamese_core.forgery import layout, verification_rates


def test_both_usual_layouts_are_recognised_and_nothing_else():
    names = ["001/genuine", "001/forged", "002/Genuine", "002/FORG", "003", "003_forg",
             "004", "004-forgeries", "Greek/alpha", "Greek/beta", "fake", "005/skilled"]
    got = layout(names)
    assert got["001/genuine"] == ("001", False) and got["001/forged"] == ("001", True)
    assert got["002/Genuine"] == ("002", False) and got["002/FORG"] == ("002", True)
    assert got["003"] == ("003", False) and got["003_forg"] == ("003", True)
    assert got["004-forgeries"] == ("004", True)
    # Characters, a class merely called "fake", forgeries of nobody with genuine images: kept.
    assert got["Greek/alpha"] == ("Greek/alpha", False) and got["fake"] == ("fake", False)
    assert got["005/skilled"] == ("005/skilled", False)


def test_verification_rates_count_each_kind_of_pair():
    # Person 0 at x=0, person 1 at x=10; a forgery of person 0 at x=0.5 (close: accepted at a
    # threshold of 1) and one at x=3 (rejected).
    emb = np.array([[0.0], [0.2], [10.0], [10.4]])
    labels = np.array([0, 0, 1, 1])
    f_emb, forgery_of = np.array([[0.5], [3.0]]), np.array([0, 0])
    r = verification_rates(emb, labels, f_emb, forgery_of, threshold=1.0)
    assert (r["n_genuine_pairs"], r["n_random_pairs"], r["n_skilled_pairs"]) == (2, 4, 4)
    assert r["frr"] == 0.0 and r["far_random"] == 0.0
    assert r["far_skilled"] == pytest.approx(2 / 4)     # 0.5 is within 1 of both 0 and 0.2
    assert r["eer_random"] == 0.0 and r["eer_skilled"] > 0
