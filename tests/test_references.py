"""references.py: several references of one identity -> one score, its rule chosen on
validation."""
import numpy as np
import pytest

from siamese_core.references import (
    MIN_SPREAD,
    RULES,
    ReferenceRule,
    choose,
    enrolment_rates,
    enrolment_scores,
    spread,
)


def test_spread_is_the_mean_distance_between_two_references():
    # Three points on a line at 0, 3 and 4: distances 3, 4, 1 -> mean 8/3.
    e = np.array([[0.0, 0.0], [3.0, 0.0], [4.0, 0.0]])
    assert spread(e) == pytest.approx(8 / 3)
    assert spread(e[:1]) == 0.0


def test_each_rule_scores_by_hand():
    refs = np.array([[0.0, 0.0], [3.0, 0.0], [4.0, 0.0]])     # spread 8/3
    d = np.array([1.0, 2.0, 6.0])
    assert ReferenceRule("median").score(d, refs) == pytest.approx(2.0)
    assert ReferenceRule("mean").score(d, refs) == pytest.approx(3.0)
    assert ReferenceRule("spread", typical=0.5).score(d, refs) == pytest.approx(3 - 8 / 3 + 0.5)
    # Fewer references than MIN_SPREAD: their spread says too little, the mean decides.
    assert MIN_SPREAD == 3
    assert ReferenceRule("spread", 0.5).score(d[:2], refs[:2]) == pytest.approx(1.5)
    # One reference: every rule is the pair's distance.
    for r in RULES:
        assert ReferenceRule(r, 0.5).score(d[:1], refs[:1]) == pytest.approx(1.0)
    # Many questioned inputs at once: the same as one by one.
    many = np.array([[1.0, 0.2], [2.0, 0.1], [6.0, 0.3]])
    for r in RULES:
        rule = ReferenceRule(r, 0.5)
        np.testing.assert_allclose(rule.scores(many, refs),
                                   [rule.score(many[:, 0], refs), rule.score(many[:, 1], refs)])
    with pytest.raises(ValueError, match="unknown reference rule"):
        ReferenceRule("max")


def test_meta_without_a_rule_is_the_median():
    assert ReferenceRule.from_meta({}) == ReferenceRule("median", 0.0)
    assert ReferenceRule.from_meta({"references": {"rule": "spread", "typical": 0.7,
                                                   "k": 5}}) == ReferenceRule("spread", 0.7)


def writers(spreads, forgery_at, n=8, forgeries=6, dim=16, seed=0):
    """Embeddings of writers who each sign within their own ``spreads[i]`` of a centre, and
    forgeries ``forgery_at[i]`` (relative to that spread) from it: the signature case, where
    what a forgery is off by depends on how alike the writer signs."""
    rng = np.random.default_rng(seed)
    emb, labels, f_emb, of = [], [], [], []
    for i, (s, f) in enumerate(zip(spreads, forgery_at)):
        c = rng.normal(size=dim) * 10
        for _ in range(n):
            emb.append(c + s * rng.normal(size=dim) / np.sqrt(dim))
            labels.append(i)
        for _ in range(forgeries):
            u = rng.normal(size=dim)
            f_emb.append(c + f * s * u / np.linalg.norm(u) + 0.2 * s * rng.normal(size=dim) / np.sqrt(dim))
            of.append(i)
    return np.array(emb), np.array(labels), np.array(f_emb), np.array(of)


def test_writers_who_sign_alike_are_held_to_it():
    """Consistent and variable writers, each forged at four times their own variation: a fixed
    distance cannot serve both, the spread rule can — and choose() finds it on its own."""
    emb, labels, f_emb, of = writers([0.3, 0.3, 0.3, 3.0, 3.0, 3.0], [4.0] * 6)
    same_m, other_m = enrolment_scores(emb, labels, 5, ReferenceRule("median"), f_emb, of)
    rule, chosen = choose(emb, labels, f_emb, of)
    same_s, other_s = enrolment_scores(emb, labels, 5, rule, f_emb, of)
    assert rule.rule == "spread" and chosen["k"] == 5 and chosen["classes"] == 6
    assert chosen["against"] == "skilled forgeries"
    assert chosen["eer"]["spread"] < 0.1 < 0.4 < chosen["eer"]["median"]
    # The typical distance puts the scores on the pairs' scale: genuine scores about the
    # typical distance of two images of one writer.
    assert rule.typical == pytest.approx(np.mean([np.linalg.norm(emb[i] - emb[j])
                                                  for i in range(len(emb))
                                                  for j in range(i + 1, len(emb))
                                                  if labels[i] == labels[j]]))
    assert same_s.mean() == pytest.approx(rule.typical, rel=0.2)
    assert len(same_m) == 6 * 10 * 3 and len(other_m) == 6 * 10 * 6   # 10 draws a writer


def test_when_spread_says_nothing_the_median_stays():
    """Every writer alike and forgeries far: all rules are perfect, the tie keeps the median."""
    emb, labels, f_emb, of = writers([1.0] * 4, [20.0] * 4)
    rule, chosen = choose(emb, labels, f_emb, of)
    assert rule.rule == "median" and set(chosen["eer"]) == set(RULES)
    # Too few classes with more than 3 images: no choice, the median.
    assert choose(emb[:10], labels[:10]) == (ReferenceRule(), {})


def test_enrolment_rates_at_a_threshold():
    emb, labels, f_emb, of = writers([0.3, 0.3, 0.3, 3.0, 3.0, 3.0], [4.0] * 6)
    rule, chosen = choose(emb, labels, f_emb, of)
    r = enrolment_rates(emb, labels, rule, 1e9, 5, f_emb, of)       # everything accepted
    assert r["frr"] == 0.0 and r["far"] == 1.0 and r["k"] == 5 and r["rule"] == "spread"
    r = enrolment_rates(emb, labels, rule, -1.0, 5, f_emb, of)      # nothing accepted
    assert r["frr"] == 1.0 and r["far"] == 0.0 and r["eer"] == chosen["eer"]["spread"]
    # Without forgeries the impostors are the other writers' signatures.
    r = enrolment_rates(emb, labels, rule, 1e9, 5)
    assert r["against"] == "other classes"
    assert enrolment_rates(emb, labels, rule, 1.0, 8) == {}          # nobody has 9 images
