"""The garbage collector pauses and freezes used while data is built and during training."""

from __future__ import annotations

import gc

import pytest

from seq2seq.errors import DataError
from seq2seq.utils.collector import frozen_gc, paused_gc


def test_paused_gc_restores_the_collector() -> None:
    """The collector is off inside, back on after (also after an error), and left off when it was off."""
    assert gc.isenabled()
    with pytest.raises(DataError), paused_gc():
        assert not gc.isenabled()
        raise DataError("bad line")
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_frozen_gc_exempts_existing_objects_until_the_block_ends() -> None:
    """Objects that exist on entry are frozen inside (also through an error) and unfrozen after; a caller's own
    freeze is left alone."""
    assert gc.get_freeze_count() == 0
    with pytest.raises(DataError), frozen_gc():
        assert gc.get_freeze_count() > 0
        raise DataError("bad line")
    assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        frozen_by_caller = gc.get_freeze_count()
        with frozen_gc():
            pass
        # not unfrozen (that would leave 0); a few frozen objects may die meanwhile (another thread's, under xdist)
        assert frozen_by_caller - 100 <= gc.get_freeze_count() <= frozen_by_caller
    finally:
        gc.unfreeze()
