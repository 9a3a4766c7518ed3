import pytest

from progan_common.schedule import ProgressiveSchedule


def test_phase_boundaries_and_alpha():
    s = ProgressiveSchedule(
        max_res=16,
        start_res=4,
        stabilize_kimg=1,
        fade_kimg=2,
        batch_sizes={4: 8, 8: 4},
        default_batch=2,
    )
    # stabilise 4: images [0, 1000]; fade 8: (1000, 3000); stabilise 8: [3000, 4000]; ...
    st = s.state(0)
    assert (st.res, st.phase, st.alpha, st.batch) == (4, "stabilize", 1.0, 8)
    assert s.state(1000).phase == "stabilize"
    st = s.state(2000)
    assert (st.res, st.phase, st.batch) == (8, "fade", 4)
    assert st.alpha == pytest.approx(0.5)
    assert s.state(3000).phase == "stabilize" and s.state(3000).res == 8
    assert s.state(5000).res == 16 and s.state(5000).phase == "fade"
    assert s.state(5000).alpha == pytest.approx(0.5)
    assert s.state(6000).res == 16 and s.state(6000).phase_end_nimg is None
    assert s.state(10**7).res == 16 and s.state(10**7).alpha == 1.0


def test_phases_list_and_optimizer_resets():
    s = ProgressiveSchedule(max_res=32, stabilize_kimg=1, fade_kimg=1)
    names = [p.phase_name for p in s.phases()]
    assert names == [
        "stabilize-4",
        "fade-8",
        "stabilize-8",
        "fade-16",
        "stabilize-16",
        "fade-32",
        "stabilize-32",
    ]
    # the official code resets Adam at the start and the end of every fade
    keys = [s.state(n).optimizer_key for n in range(0, 6001, 10)]
    changes = sum(1 for a, b in zip(keys, keys[1:]) if a != b)
    assert changes == 2 * 3


def test_lod_matches_official_formula():
    s = ProgressiveSchedule(max_res=1024, stabilize_kimg=600, fade_kimg=600)
    # official: lod = log2(1024) - log2(4) - phase_idx - max(phase_kimg - 600, 0) / 600
    for kimg in [0, 300, 600, 900, 1200, 1500, 5000, 9000]:
        phase_idx = kimg // 1200
        phase_kimg = kimg - phase_idx * 1200
        lod = max(8 - phase_idx - max(phase_kimg - 600, 0) / 600, 0.0)
        assert s.state(kimg * 1000).lod == pytest.approx(lod)


def test_no_growing_and_validation():
    s = ProgressiveSchedule(max_res=64, growing=False)
    assert s.state(0).res == 64 and s.state(0).alpha == 1.0
    with pytest.raises(ValueError, match="power of two"):
        ProgressiveSchedule(max_res=48)
    with pytest.raises(ValueError, match="exceeds"):
        ProgressiveSchedule(max_res=8, start_res=16)


def test_ema_rampup_caps_the_half_life():
    from progan_common.config import PRESETS, ProGANConfig

    paper = ProGANConfig(**PRESETS["cifar10"])
    assert paper.ema_rampup == 0 and paper.ema_beta_at(0, 16) == paper.ema_beta_at(10**6, 16)
    cfg = ProGANConfig(ema_beta=0.999, ema_rampup=0.05)
    # By hand: half-life of 0.999 at batch 16 is 16 * ln 0.5 / ln 0.999 = 11,085 images;
    # at 1,000 images shown the cap is 0.05 * 1000 = 50 images -> beta = 0.5 ** (16 / 50).
    assert cfg.ema_beta_at(1000, 16) == pytest.approx(0.5**0.32, rel=1e-12)
    assert cfg.ema_beta_at(0, 16) == 0.0  # the EMA starts as a copy of G
    betas = [cfg.ema_beta_at(n, 16) for n in (0, 1_000, 50_000, 200_000, 10**6)]
    assert betas == sorted(betas) and betas[-2] < 0.999
    assert betas[-1] == pytest.approx(0.999, rel=1e-12)  # past 222k images: the paper's decay
    assert ProGANConfig(**PRESETS["quick"]).ema_rampup == 0.05
    with pytest.raises(ValueError, match="ema_rampup"):
        ProGANConfig(ema_rampup=-1).validate()


def test_dcgan_ema_rampup_follows_the_same_rule():
    """vanilla_gan's --ema-rampup is ProGAN's rule (one shared function), per G step of
    batch * n_dis images; it needs an EMA to ramp."""
    from progan_common.config import ProGANConfig
    from vanilla_gan.config import TrainConfig

    dc = TrainConfig(ema_beta=0.995, ema_rampup=0.05, batch=64)
    pg = ProGANConfig(ema_beta=0.995, ema_rampup=0.05)
    for n in (0, 640, 10_000, 62_400, 10**6):
        assert dc.ema_beta_at(n) == pg.ema_beta_at(n, 64)
    # By hand: 0.995 at batch 64 has a half-life of 64 * ln 0.5 / ln 0.995 = 8,850 images; at
    # 10k images the cap is 500 images -> beta = 0.5 ** (64 / 500).
    assert dc.ema_beta_at(10_000) == pytest.approx(0.5 ** (64 / 500), rel=1e-12)
    assert dc.ema_beta_at(10**6) == pytest.approx(0.995, rel=1e-12)
    two = TrainConfig(ema_beta=0.995, ema_rampup=0.05, batch=64, n_dis=2)
    assert two.ema_beta_at(10_000) == pytest.approx(0.5 ** (128 / 500), rel=1e-12)
    assert TrainConfig(ema_beta=0.995).ema_beta_at(0) == 0.995  # no ramp-up: fixed decay
    with pytest.raises(ValueError, match="ema_rampup must be >= 0"):
        TrainConfig(ema_beta=0.995, ema_rampup=-0.1).validate()
    with pytest.raises(ValueError, match="needs an EMA"):
        TrainConfig(ema_rampup=0.05).validate()
