"""The side-by-side tooling: the table of both sides' records."""
from __future__ import annotations

from fidelity.lm import summary_table


def test_the_table_gives_mean_and_spread_over_seeds_per_side_and_epoch():
    def record(side, seed, epoch, nll):
        metrics = {"nll": nll, "ppl": 2 * nll, "kl": 1.0, "mi": 0.5}
        return {"side": side, "seed": seed, "epoch": epoch, "train_seconds": 10.0 * seed, "test": metrics}

    table = summary_table([record("original", 1, 1, 100.0), record("original", 2, 1, 102.0),
                           record("harness", 1, 1, 101.0)])
    lines = table.splitlines()
    assert lines[2] == "| harness | 1 | 1 | 101.00 | 202.00 | 1.00 | 0.50 | 10.00 |"
    assert lines[3] == "| original | 1 | 1, 2 | 101.00 ± 1.41 | 202.00 ± 2.83 | 1.00 ± 0.00 | 0.50 ± 0.00 | 15.00 ± 7.07 |"
