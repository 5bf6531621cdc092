"""The front end's counts shared by the workers of one serve (tls/counts.py): summed over the
slots, carried on by a replaced worker, from zero for a new serve."""

from __future__ import annotations

from pathlib import Path

from certgate.tls.counts import CountsSlot, FrontCounts, read_counts, reset_counts


def test_workers_are_summed_and_a_replaced_worker_carries_its_totals_on(tmp_path: Path) -> None:
    path = tmp_path / "tls-counts"
    assert read_counts(path) is None  # no serve has published
    first, second = CountsSlot(path, 0), CountsSlot(path, 1)
    first.publish(10, 2, 3)
    second.publish(5, 1, 4)
    assert read_counts(path) == FrontCounts(15, 3, 7)

    second.close()  # the worker died: its connections went with it, its totals stay
    assert read_counts(path) == FrontCounts(15, 3, 3)
    replacement = CountsSlot(path, 1)  # its front end counts from zero again
    replacement.publish(1, 0, 1)
    assert read_counts(path) == FrontCounts(16, 3, 4)

    first.close()
    replacement.close()
    reset_counts(path)  # a new serve
    assert read_counts(path) is None
    CountsSlot(path, 1).publish(1, 0, 0)
    assert read_counts(path) == FrontCounts(1, 0, 0)
