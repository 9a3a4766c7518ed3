"""The ``dcgan-paper`` preset (Radford et al. 2016 widths, batch, U(-1, 1) latent) and the
``--latent-dist`` option: layer lists, parameter counts, the latents both frameworks draw."""

from __future__ import annotations

import numpy as np
import pytest

from gancore import latents
from vanilla_gan import arch, config, sample, train
from vanilla_gan.config import PRESETS, TrainConfig


def _paper_config(res: int) -> TrainConfig:
    values = config.preset_for("dcgan")
    values.update(PRESETS["dcgan-paper"], res=res)
    cfg = TrainConfig(**values)
    cfg.validate()
    return cfg


def _channels(layers: list[arch.Layer], kinds: tuple[str, ...]) -> list[int]:
    return [layer.out_ch for layer in layers if layer.kind in kinds]


def test_paper_preset_has_figure_1_widths_at_64():
    """Figure 1: z (100, uniform) -> 4x4x1024 -> 8x8x512 -> 16x16x256 -> 32x32x128 -> 64x64x3;
    D mirrors it (dcgan_code faces model: ndf = 128, doubling to 1024)."""
    cfg = _paper_config(64)
    assert (cfg.width, cfg.batch, cfg.z_dim, cfg.latent_dist) == (128, 128, 100, "uniform")
    g = arch.generator_layers("dcgan", 64, cfg.width, cfg.z_dim, 3)
    d = arch.discriminator_layers("dcgan", 64, cfg.width, 3, sn=False, slope=0.2)
    assert _channels(g, ("convT",)) == [1024, 512, 256, 128, 3]
    assert [layer.size for layer in g if layer.kind == "convT"] == [4, 8, 16, 32, 64]
    assert _channels(d, ("conv",)) == [128, 256, 512, 1024, 1]
    # 32x32 follows the official code's rule (fixed outer width, doubling per stage).
    g32 = arch.generator_layers("dcgan", 32, cfg.width, cfg.z_dim, 3)
    assert _channels(g32, ("convT",)) == [512, 256, 128, 3]


def test_paper_preset_parameter_count():
    """Trainable parameters counted by hand from Figure 1's widths (4x4 kernels, no conv bias
    before BN, BN scale + shift) agree with the torch networks."""
    torch_nets = pytest.importorskip("vanilla_gan.torch_nets")
    cfg = _paper_config(64)
    g_convs = [(100, 1024), (1024, 512), (512, 256), (256, 128), (128, 3)]
    g_expected = sum(i * o * 16 for i, o in g_convs) + 3 + 2 * (1024 + 512 + 256 + 128)
    d_convs = [(3, 128), (128, 256), (256, 512), (512, 1024), (1024, 1)]
    # conv weights, the input layer's and the logit's biases, BN on layers 2-4
    d_expected = sum(i * o * 16 for i, o in d_convs) + 128 + 1 + 2 * (256 + 512 + 1024)
    assert (g_expected, d_expected) == (12_658_435, 11_036_289)
    G, D = torch_nets.build_models(cfg, 3)
    assert torch_nets.count_params(G) == g_expected
    assert torch_nets.count_params(D) == d_expected


def test_cli_resolves_the_paper_preset():
    def resolve(*args: str) -> TrainConfig:
        return train.resolve(train.parser().parse_args(list(args)))

    cfg = resolve("--model", "dcgan", "--preset", "dcgan-paper", "--res", "64")
    assert (cfg.width, cfg.batch, cfg.latent_dist, cfg.res, cfg.z_dim) == (
        128,
        128,
        "uniform",
        64,
        100,
    )
    assert resolve("--model", "dcgan").latent_dist == "normal"
    assert resolve("--model", "dcgan", "--latent-dist", "uniform").latent_dist == "uniform"
    with pytest.raises(SystemExit):  # argparse refuses an unknown distribution
        resolve("--latent-dist", "cauchy")


def test_latent_dists_are_the_documented_draws():
    shape = (2, 64, 100)
    u = latents.step_latents(5, 128, shape, "uniform")
    assert u.dtype == np.float32 and u.shape == shape
    assert u.min() >= -1.0 and u.max() < 1.0
    expected = np.random.default_rng([5, 1, 128]).random(shape, dtype=np.float32) * 2 - 1
    assert np.array_equal(u, expected)
    # U(-1, 1): mean 0, variance 1/3 (12800 draws: standard errors 0.005 and 0.0027)
    assert abs(u.mean()) < 0.03 and abs(u.var() - 1 / 3) < 0.015
    assert np.array_equal(latents.step_latents(5, 128, shape), latents.step_latents(5, 128, shape))
    assert not np.array_equal(latents.step_latents(5, 128, shape), u)
    g = latents.latents_for(3, [0, 7], 16, "uniform")
    assert g.dtype == np.float32
    assert np.array_equal(g[1], np.random.default_rng([3, 7]).uniform(-1, 1, 16).astype(np.float32))
    assert np.array_equal(latents.latents_for(3, [7], 16), latents.latents_for(3, [0, 7], 16)[1:])
    with pytest.raises(ValueError, match="latent distribution"):
        latents.step_latents(0, 0, shape, "cauchy")
    assert latents.LATENT_DISTS == config.LATENT_DISTS


def _captured_job(monkeypatch, folder, tmp_path, framework: str):
    """The TrainJob the train CLI builds (the trainer is never made: frameworks not imported)."""
    seen = {}

    def fake_execute(run, job, make_trainer, **_kw):
        seen["job"] = job
        return 0

    monkeypatch.setattr(train, "execute", fake_execute)
    args = ["--model", "dcgan", "--framework", framework, "--dataset", f"folder:{folder}"]
    args += ["--res", "32", "--quick", "--latent-dist", "uniform", "--seed", "4"]
    args += ["--out", str(tmp_path / framework), "--no-progress"]
    assert train.main(args) == 0
    return seen["job"]


def test_both_frameworks_draw_the_same_uniform_latents(monkeypatch, image_folder, tmp_path):
    jobs = {fw: _captured_job(monkeypatch, image_folder, tmp_path, fw) for fw in ("torch", "tf")}
    z = {fw: job.draw(32, None)["z"] for fw, job in jobs.items()}
    assert np.array_equal(z["torch"], z["tf"])
    assert np.array_equal(z["torch"], latents.step_latents(4, 32, z["torch"].shape, "uniform"))
    assert np.array_equal(jobs["torch"].grid_latents, jobs["tf"].grid_latents)
    assert np.array_equal(
        jobs["torch"].grid_latents, latents.latents_for(4, range(16), 100, "uniform")
    )


def test_sample_uses_the_runs_latent_dist(image_folder, tmp_path):
    """A uniform-latent run exports the images of the uniform latents (not the normal ones)."""
    torch = pytest.importorskip("torch")
    from vanilla_gan.torch_training import generate, load_for_inference

    out = tmp_path / "run"
    args = ["--model", "dcgan", "--framework", "torch", "--dataset", f"folder:{image_folder}"]
    args += ["--res", "32", "--quick", "--kimg", "0.016", "--batch", "8", "--threads", "1"]
    args += ["--latent-dist", "uniform", "--device", "cpu", "--out", str(out), "--no-progress"]
    assert train.main(args) == 0
    npz = tmp_path / "s.npz"
    assert sample.main(["--run", str(out), "--n", "3", "--seed", "1", "--out", str(npz)]) == 0
    with np.load(npz) as f:
        images = f["images"]
    cfg, G, _, _, _ = load_for_inference(out, device="cpu")
    dev = torch.device("cpu")
    want = generate(G, latents.latents_for(1, range(3), 100, "uniform"), dev, bn_mode=cfg.sample_bn)
    other = generate(G, latents.latents_for(1, range(3), 100), dev, bn_mode=cfg.sample_bn)
    assert np.array_equal(images, want) and not np.array_equal(images, other)
