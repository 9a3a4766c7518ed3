"""CPU pinning of the speed benchmarks' child processes (gancore.hardware.pinned_to)."""

from __future__ import annotations

import os
import subprocess
import sys

from gancore.hardware import cpu_seconds, cpu_subset, pinned_to


def test_cpu_subset_takes_the_first_allowed_cpus():
    allowed = sorted(os.sched_getaffinity(0))
    assert cpu_subset(0) == allowed
    assert cpu_subset(1) == allowed[:1]
    assert cpu_subset(len(allowed) + 5) == allowed


def test_a_pinned_child_and_its_own_children_run_on_those_cpus_only():
    one = cpu_subset(1)
    code = (
        "import os, subprocess, sys; print(sorted(os.sched_getaffinity(0))); "
        "print(subprocess.run([sys.executable, '-c', 'import os; "
        "print(sorted(os.sched_getaffinity(0)))'], capture_output=True, text=True).stdout)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=pinned_to(one)
    ).stdout.split()
    assert out == [str(one), str(one)]
    unpinned = subprocess.run(
        [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert unpinned == str(cpu_subset(0))


def test_cpu_seconds_counts_this_process_work():
    before = cpu_seconds()
    total = 0
    for i in range(2_000_000):
        total += i
    assert cpu_seconds() > before
