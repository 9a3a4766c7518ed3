"""Each paper preset's schedule ends where the official one does and agrees with it throughout.

The official schedules are transcribed here from the official code: the TF
``train.TrainingSchedule`` with the ``config.py`` presets (``preset-v1-1gpu``,
``preset-v2-1gpu``, both with the ``-fp32`` minibatch caps), and for CIFAR-10, which the TF
code has no preset for, the original Theano ``train_gan`` loop with its "cifar-10-32x32"
config. At many image counts (phase boundaries included) our ``ProgressiveSchedule`` must
give the same lod, resolution, minibatch and learning rate, and the phase table must end
with the stabilisation at full resolution, over the official total length.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from progan_common.cli import phase_table
from progan_common.config import PRESETS, ProGANConfig

FP32_CAPS = {256: 16, 512: 8, 1024: 4}  # official config.py "-fp32": max_minibatch_per_gpu


def tf_schedule(nimg, res_log2, training, transition, mb_base, mb_dict, lr_dict):
    """Official TF ``TrainingSchedule`` (1 GPU, lod_initial_resolution 4) -> (lod, res, mb, lr)."""
    kimg = nimg / 1000.0
    phase_dur = training + transition
    phase_idx = int(np.floor(kimg / phase_dur)) if phase_dur > 0 else 0
    phase_kimg = kimg - phase_idx * phase_dur
    lod = res_log2 - np.floor(np.log2(4)) - phase_idx
    if transition > 0:
        lod -= max(phase_kimg - training, 0.0) / transition
    lod = max(lod, 0.0)
    res = 2 ** (res_log2 - int(np.floor(lod)))
    mb = mb_dict.get(res, mb_base)
    if res in FP32_CAPS:
        mb = min(mb, FP32_CAPS[res])
    return lod, res, mb, lr_dict.get(res, 0.001)


def theano_schedule(nimg, res_log2, training, transition, mb_default):
    """Original Theano ``train_gan`` lod (lod_initial_resolution 4) -> (lod, res, mb, lr)."""
    lod = max(res_log2 - int(np.round(np.log2(4))), 0)
    tlod = (nimg / 1000.0) / (training + transition)
    lod -= np.floor(tlod)
    lod -= max(1.0 + (np.fmod(tlod, 1.0) - 1.0) * (training + transition) / transition, 0.0)
    lod = max(lod, 0.0)
    return lod, 2 ** (res_log2 - int(np.floor(lod))), mb_default, 0.001


OFFICIAL = {
    # preset-v1-1gpu: minibatch_base 16, {256: 14, 512: 6, 1024: 3}, 800 + 800, 19000 kimg
    "celebahq": (
        19000,
        lambda n: tf_schedule(n, 10, 800, 800, 16, {256: 14, 512: 6, 1024: 3}, {}),
    ),
    # preset-v2-1gpu: minibatch_base 4, dict below, TrainingSchedule defaults 600 + 600,
    # G/D lrate 0.0015 at 1024, 12000 kimg
    "celebahq-1gpu": (
        12000,
        lambda n: tf_schedule(
            n,
            10,
            600,
            600,
            4,
            {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4},
            {1024: 0.0015},
        ),
    ),
    # Theano cifar-10-32x32: 400 + 400, minibatch 16, 20000 kimg
    "cifar10": (20000, lambda n: theano_schedule(n, 5, 400, 400, 16)),
}


def _probe_points(total_kimg: float, cycle_kimg: float) -> list[int]:
    pts = set(np.random.default_rng(0).integers(0, int(total_kimg * 1000), 300).tolist())
    for c in range(int(total_kimg // cycle_kimg) + 1):  # phase starts, boundaries, +-1 image
        for off in (0.0, cycle_kimg / 2, cycle_kimg * 0.75):
            base = int(round((c * cycle_kimg + off) * 1000))
            pts.update(p for p in (base - 1, base, base + 1) if 0 <= p < total_kimg * 1000)
    return sorted(pts)


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_schedule_matches_official_everywhere(name):
    total, official = OFFICIAL[name]
    cfg = ProGANConfig(**PRESETS[name])
    cfg.validate()
    assert cfg.kimg == total
    sched = cfg.schedule()
    for nimg in _probe_points(total, cfg.stabilize_kimg + cfg.fade_kimg):
        lod, res, mb, lr = official(nimg)
        st = sched.state(nimg)
        assert st.lod == pytest.approx(lod, abs=1e-9), nimg
        # Official resolution 2**(R - floor(lod)): in a fade that is the new, larger one,
        # and the minibatch / learning rate are that resolution's, as ours.
        assert (st.res, st.batch) == (res, mb), nimg
        assert st.lr == pytest.approx(lr), nimg


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_phase_table_ends_training_full_resolution(name):
    total, _ = OFFICIAL[name]
    cfg = ProGANConfig(**PRESETS[name])
    phases = cfg.schedule().phases(int(total * 1000))
    last = phases[-1]
    growth_kimg = int(math.log2(cfg.max_res // 4)) * (cfg.stabilize_kimg + cfg.fade_kimg)
    assert (last.phase, last.res, last.phase_end_nimg) == ("stabilize", cfg.max_res, None)
    assert last.phase_start_nimg == growth_kimg * 1000 < total * 1000  # reached and trained
    assert phases[-2].phase == "fade" and phases[-2].res == cfg.max_res
    table = phase_table(cfg).splitlines()
    assert table[-2].split()[1:3] == ["stabilize", str(cfg.max_res)]
    assert table[-2].split()[-1] == "end" and table[-1] == f"total: {total:g} kimg"


def test_paper_presets_use_the_whole_minibatch_for_stddev():
    """Paper section 3 / official preset-v1 D.mbstd_group_size = 16 / Theano 'all': every
    minibatch of the paper presets is one stddev group (min(16, N) = N for N <= 16)."""
    for name in ("celebahq", "cifar10"):
        cfg = ProGANConfig(**PRESETS[name])
        sched = cfg.schedule()
        assert all(sched.batch_for(4 * 2**k) <= cfg.mbstd_group for k in range(9))
    assert ProGANConfig(**PRESETS["celebahq-1gpu"]).mbstd_group == 4  # official D default


def test_quick_preset_reaches_max_res():
    cfg = ProGANConfig(**PRESETS["quick"])
    last = cfg.schedule().phases(int(cfg.kimg * 1000))[-1]
    assert (last.phase, last.res) == ("stabilize", cfg.max_res)


# ------------------------------------------------------------------------- SN-ProGAN
SN_PHASES = {
    # (phase, res, batch, start kimg) per phase; the run ends with one stabilisation at max_res
    "sn-progan-faces-256": (
        4000,
        [("stabilize", 64, 16, 0), ("fade", 128, 16, 800), ("stabilize", 128, 16, 1600),
         ("fade", 256, 16, 2400), ("stabilize", 256, 16, 3200)],
    ),
    "sn-progan-faces-64": (
        7200,
        [("stabilize", 4, 16, 0)]
        + [(p, r, 16, 800 * (2 * i + 1 + (p == "stabilize")))
           for i, r in enumerate((8, 16, 32, 64)) for p in ("fade", "stabilize")],
    ),
    "sn-progan-quick": (
        160,
        [("stabilize", 4, 16, 0)]
        + [(p, r, 16, 20 * (2 * i + 1 + (p == "stabilize")))
           for i, r in enumerate((8, 16, 32)) for p in ("fade", "stabilize")],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SN_PHASES))
def test_sn_progan_presets_phase_table(name):
    total, expected = SN_PHASES[name]
    cfg = ProGANConfig(**PRESETS[name])
    cfg.validate()
    assert cfg.kimg == total and cfg.model_name == "sn-progan"
    phases = cfg.schedule().phases(int(total * 1000))
    got = [(p.phase, p.res, p.batch, p.phase_start_nimg // 1000) for p in phases]
    assert got == expected
    assert all(p.lr == pytest.approx(2e-4) for p in phases)
    table = phase_table(cfg).splitlines()
    assert len(table) == len(expected) + 2 and table[-1] == f"total: {total:g} kimg"
    assert table[-2].split()[1:3] == ["stabilize", str(cfg.max_res)] and table[-2].endswith("end")


def test_sn_progan_presets_settings():
    """The switches and SN-GAN's Table 1 setting C (lr 2e-4, beta1 0.5, beta2 0.999, one D step
    per G step), latent 128, no penalty or drift, He-scale weight storage; the paper presets
    keep the ProGAN defaults."""
    for name in ("sn-progan-faces-256", "sn-progan-faces-64"):
        cfg = ProGANConfig(**PRESETS[name])
        assert cfg.spectral_norm_g and cfg.spectral_norm_d and not cfg.equalized_lr
        assert (cfg.loss, cfg.label_smoothing, cfg.gp_lambda, cfg.drift) == (
            "nonsaturating", 0.1, 0.0, 0.0)  # fmt: skip
        assert (cfg.lr, cfg.beta1, cfg.beta2, cfg.latent_dim) == (2e-4, 0.5, 0.999, 128)
        assert cfg.pixelnorm and cfg.ema and cfg.reset_optimizer and cfg.mirror
    assert ProGANConfig(**PRESETS["sn-progan-faces-256"]).start_res == 64
    assert ProGANConfig(**PRESETS["sn-progan-faces-64"]).start_res == 4
    quick = ProGANConfig(**PRESETS["sn-progan-quick"])
    assert quick.model_name == "sn-progan" and quick.latent_dim == 64 and quick.fmap_max == 64
    for name in ("celebahq", "celebahq-1gpu", "cifar10", "quick"):
        cfg = ProGANConfig(**PRESETS[name])
        assert cfg.model_name == "progan" and cfg.loss == "wgan-gp"
        assert cfg.gp_resolution == "full" and cfg.label_smoothing == 0.0
