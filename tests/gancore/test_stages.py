"""Stages as a function of images shown; the last step's start recomputed from the schedule."""

from __future__ import annotations

import pytest

from gancore.train.stages import ConstantStages, last_step_start
from progan_common.schedule import ProgressiveSchedule


def _walk(state, nimg: int) -> int | None:
    """Brute force: step from 0, each step advancing by its stage's batch."""
    pos, last = 0, None
    while pos < nimg:
        last = pos
        pos += state(pos).batch
    return last


@pytest.mark.parametrize(
    "sched",
    [
        ProgressiveSchedule(max_res=32, stabilize_kimg=0.05, fade_kimg=0.07, default_batch=16),
        ProgressiveSchedule(
            max_res=32, stabilize_kimg=0.04, fade_kimg=0.03, batch_sizes={4: 7, 8: 5, 16: 3, 32: 2}
        ),
        ProgressiveSchedule(max_res=16, stabilize_kimg=0.0, fade_kimg=0.03, default_batch=4),
        ProgressiveSchedule(max_res=16, growing=False, default_batch=6),
    ],
)
def test_last_step_start_equals_the_brute_force_walk(sched):
    for nimg in range(0, 400):
        assert last_step_start(sched.state, nimg) == _walk(sched.state, nimg), nimg


def test_constant_stages():
    st = ConstantStages(res=32, batch=64)
    assert st.state(1000).level == 3 and st.state(1000).batch == 64 and not st.state(0).fading
    assert len(st.phases()) == 1
    assert last_step_start(st.state, 640) == 576 and last_step_start(st.state, 0) is None
