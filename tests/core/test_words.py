"""Counted nouns: no message reads "1 epochs"."""

from siamese_bench.core.words import plural
from siamese_bench.sweep.claims import describe_points


def test_plural_forms():
    assert [plural(n, "epoch") for n in (0, 1, 2)] == ["0 epochs", "1 epoch", "2 epochs"]
    assert plural(1, "GPU") == "1 GPU" and plural(3, "family", "families") == "3 families"


def test_a_round_of_one_cell_and_one_seed_reads_as_singular():
    assert describe_points([("a", 0)]) == "1 cell x 1 seed = 1 trial"
    assert describe_points([("a", 0), ("a", 1), ("b", 0), ("b", 1)]) == "2 cells x 2 seeds = 4 trials"
