"""Published reference figures and how comparable they are to a profile.

These are the only numbers in a report that no run produced; each is shown in
its own row with its source, marked *unverified* where the figure has not been
checked against its paper, and with a note on whether it can be compared with the profile's
data and protocol at all.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    model: str
    dataset: str  # the published setting's data set, in the project's names
    family: str  # metric family (benchmarks.report.keys.family) or "time"
    value: float | str
    source: str
    protocol: str  # what the number measured (N, resolution, split)
    verified: bool = True

    @property
    def label(self) -> str:
        return f"{self.model} — {self.source}" + ("" if self.verified else " (unverified)")

    def value_text(self) -> str:
        text = self.value if isinstance(self.value, str) else f"{self.value:g}"
        return text if self.verified else f"{text} (unverified)"


FIGURES: tuple[Figure, ...] = (
    Figure(
        "ProGAN",
        "cifar10",
        "is",
        8.80,
        "official README (tkarras/progressive_growing_of_gans)",
        "CIFAR-10 unsupervised, all ten classes",
    ),
    Figure(
        "ProGAN",
        "celebahq",
        "fid",
        7.79,
        "StyleGAN paper, table 1, config A",
        "CelebA-HQ 1024x1024, FID 50k",
        verified=False,
    ),
    Figure(
        "ProGAN",
        "celeba",
        "swd_avg",
        2.96,
        "ProGAN paper, table 1",
        "CelebA 128x128, SWD x1e3 averaged over levels, converged",
        verified=False,
    ),
    Figure(
        "ProGAN",
        "celeba",
        "msssim",
        0.2828,
        "ProGAN paper, table 1",
        "CelebA 128x128, MS-SSIM of generated pairs, converged",
        verified=False,
    ),
    Figure(
        "SN-GAN standard CNN",
        "cifar10",
        "is",
        7.42,
        "Miyato et al. 2018, table 2",
        "CIFAR-10, all ten classes (see the paper for N)",
    ),
    Figure(
        "SN-GAN standard CNN",
        "cifar10",
        "fid",
        29.3,
        "Miyato et al. 2018, table 2",
        "CIFAR-10, all ten classes (see the paper for N)",
    ),
    Figure(
        "SN-GAN standard CNN (hinge)",
        "cifar10",
        "is",
        7.58,
        "Miyato et al. 2018, table 2",
        "CIFAR-10, all ten classes (see the paper for N)",
    ),
    Figure(
        "SN-GAN standard CNN (hinge)",
        "cifar10",
        "fid",
        25.5,
        "Miyato et al. 2018, table 2",
        "CIFAR-10, all ten classes (see the paper for N)",
    ),
    Figure(
        "DCGAN",
        "cifar10",
        "fid",
        37.7,
        "TTUR paper (Heusel et al. 2017)",
        "CIFAR-10, all ten classes",
        verified=False,
    ),
    Figure(
        "DCGAN",
        "stacked-mnist",
        "modes",
        99,
        "VEEGAN (Srivastava et al. 2017)",
        "Stacked MNIST, 1000 modes, 26k samples",
    ),
    Figure(
        "DCGAN",
        "stacked-mnist",
        "kl",
        3.4,
        "VEEGAN (Srivastava et al. 2017)",
        "Stacked MNIST, 26k samples",
    ),
    Figure(
        "PacDCGAN2",
        "stacked-mnist",
        "modes",
        1000,
        "PacGAN (Lin et al. 2018), table 2",
        "Stacked MNIST, 1000 modes, 26k samples",
    ),
    Figure(
        "PacDCGAN2",
        "stacked-mnist",
        "kl",
        0.06,
        "PacGAN (Lin et al. 2018), table 2",
        "Stacked MNIST, 26k samples",
    ),
    Figure(
        "ProGAN",
        "celebahq",
        "time",
        "2 days on 8 V100, 2 weeks on 1",
        "official README",
        "CelebA-HQ 1024x1024, full schedule",
    ),
)

# Which published settings a profile's data set relates to at all.
_RELATED = {
    "cifar10": "cifar10",
    "mnist": "stacked-mnist",
    "stacked-mnist": "stacked-mnist",
    "digits": "stacked-mnist",
    "stacked-digits": "stacked-mnist",
    "celeba": "celeba",
    "celebahq": "celebahq",
}


def related_setting(dataset: str) -> str | None:
    if dataset.startswith("cifar10"):
        return "cifar10"
    return _RELATED.get(dataset)


def comparability(fig: Figure, dataset: str, res: int | None = None) -> str:
    """One honest sentence: can this published number be compared with the profile's?"""
    rel = related_setting(dataset)
    if fig.dataset == "cifar10":
        base = (
            "Published CIFAR-10 figures are for all ten classes on lossless pixels "
            "(50k training images)"
        )
        if dataset != "cifar10":
            return base + f"; this profile uses {dataset!r}, so it is NOT comparable."
        return (
            base + "; comparable only if this run used the official lossless tarball "
            "(not the JPEG copy) and the same sample count and feature extractor."
        )
    if fig.dataset == "stacked-mnist":
        if dataset == "stacked-mnist":
            return (
                "Same task; comparable if the mode classifier is accurate (>= 98%) and "
                "26k samples were scored."
            )
        return (
            f"Stacked MNIST figure; this profile uses {dataset!r} (other digits, other "
            "classifier), so it is context only, NOT comparable."
        )
    if fig.dataset == rel:
        note = "Same data set"
        if res is not None and fig.dataset == "celeba" and res != 128:
            note += f", but published at 128x128 and this profile at {res}x{res}: not comparable"
        elif res is not None and fig.dataset == "celebahq" and res != 1024:
            note += f", but published at 1024x1024 and this profile at {res}x{res}: not comparable"
        else:
            note += "; comparable only at the same resolution, N and training length"
        return note + "."
    return f"Different data set ({fig.dataset}); context only, NOT comparable."


def figures_for(dataset: str) -> list[Figure]:
    """Published figures for the setting the profile's data set relates to."""
    rel = related_setting(dataset)
    return [f for f in FIGURES if f.dataset == rel]
