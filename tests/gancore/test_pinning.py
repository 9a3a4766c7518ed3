"""CPU pinning of the speed benchmarks' child processes (gancore.hardware.pinned_to)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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


TF_TRAINER = {
    "vanilla_gan": (
        "from tests.vanilla_gan.conftest import tiny_config\n"
        "from vanilla_gan.tf_training import TFTrainer\n"
        "TFTrainer(tiny_config('dcgan', framework='tf', threads=1, amp='{amp}', device='cpu'), 3)"
    ),
    "progan_tf": (
        "from gancore.config import build_config\n"
        "from progan_common.config import PRESETS, ProGANConfig\n"
        "from progan_tf.training import ProGANTrainer\n"
        "cfg = build_config(ProGANConfig, PRESETS, 'quick', "
        "dict(threads=1, amp='{amp}', device='cpu', max_res=8, fmap_max=8, latent_dim=8))\n"
        "ProGANTrainer(cfg, 3)"
    ),
}


@pytest.mark.parametrize("family", sorted(TF_TRAINER))
@pytest.mark.parametrize("amp", ["off", "bf16", "auto"])
def test_tensorflow_trainers_apply_threads_before_the_runtime_starts(family, amp):
    """--threads N caps TensorFlow's pools only if nothing started TF's runtime first (a device
    listing does); a fresh process building each TF trainer must end with pools of N."""
    code = TF_TRAINER[family].format(amp=amp) + (
        "\nimport tensorflow as tf\n"
        "print(tf.config.threading.get_intra_op_parallelism_threads(), "
        "tf.config.threading.get_inter_op_parallelism_threads())"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[-2:] == ["1", "1"], r.stdout
    assert "not applied" not in r.stderr


def test_bench_cpus_pins_only_with_a_thread_count():
    from gancore.hardware import bench_cpus

    assert bench_cpus(0) is None
    assert bench_cpus(1) == cpu_subset(1)
