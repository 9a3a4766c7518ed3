"""PyTorch vs TensorFlow on one device: same weights, same inputs, same outputs.

::

    python -m benchmarks.device_parity --device cuda --json runs/parity.json

The CPU test suite checks parity on the CPU (tests/progan_tf/test_parity.py,
tests/vanilla_gan/test_vg_convert.py); this runs the same comparison where the GPU
kernels (cuDNN in both frameworks) do the arithmetic. For DCGAN, SN-DCGAN, ProGAN and
SN-ProGAN it builds the PyTorch networks on ``--device``, copies their weights into the
Keras twins (TensorFlow places them on its GPU when it sees one), and compares G(z) and
D(x) in float32: ProGAN at every level, stabilising (alpha 1) and mid-fade (alpha 0.5).
TF32 is switched off in both frameworks first (both enable it by default on Ampere and
newer GPUs, where it rounds convolution inputs to 10 mantissa bits), so the remaining
differences are summation orders. A comparison passes when its largest absolute
difference is within ``--tol`` times the largest absolute output (default 1e-4; outputs
below 1e-3 are compared as if they were 1e-3).

It imports both frameworks into one process, like the weight converters; the trainers
never do.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from gancore.errors import UserError, run_cli
from gancore.helptext import HelpFormatter
from gancore.io import atomic_write_json

DEFAULT_TOL = 1e-4


def _frameworks(device: str):
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: PyTorch sees no CUDA GPU; use --device cpu.")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    from gancore.tf_utils import tf

    tf.config.experimental.enable_tensor_float_32_execution(False)
    if device == "cpu":
        tf.config.set_visible_devices([], "GPU")
    elif not tf.config.list_physical_devices("GPU"):
        raise UserError(
            f"--device {device}: TensorFlow sees no GPU (its CUDA libraries are missing?); "
            "install the gpu extra with `make install GPU=1`."
        )
    return torch, tf


def _compare(name: str, ref: np.ndarray, out: np.ndarray, tol: float) -> dict[str, Any]:
    scale = float(np.abs(ref).max())
    diff = float(np.abs(ref - out).max())
    return {
        "what": name,
        "max_abs_diff": diff,
        "max_abs_output": scale,
        "ok": bool(np.isfinite(diff) and diff <= tol * max(scale, 1e-3)),
    }


def dcgan_rows(torch, device: str, tol: float) -> list[dict[str, Any]]:
    from vanilla_gan import tf_nets, torch_nets
    from vanilla_gan.config import TrainConfig, preset_for
    from vanilla_gan.convert import copy_torch_to_keras

    rows = []
    for model in ("dcgan", "sndcgan"):
        cfg = TrainConfig(**{**preset_for(model), "res": 32, "batch": 16})
        cfg.validate()
        torch.manual_seed(0)
        G, D = torch_nets.build_models(cfg, 3)
        with torch.no_grad():  # move BN running statistics and SN vectors off their init
            for _ in range(2):
                D(G(torch.randn(16, cfg.z_dim)))
        G.eval()
        D.eval()
        kG, kD = tf_nets.build_models(cfg, 3)
        copy_torch_to_keras(G, kG)
        copy_torch_to_keras(D, kD)
        G.to(device)
        D.to(device)
        z = np.random.default_rng(1).standard_normal((16, cfg.z_dim)).astype(np.float32)
        with torch.no_grad():
            x_t = G(torch.from_numpy(z).to(device))
            d_t = D(x_t).cpu().numpy()
            x_t = x_t.cpu().numpy()
        x_k = np.transpose(np.asarray(kG(z, training=False)), (0, 3, 1, 2))
        d_k = np.asarray(kD(np.transpose(x_t, (0, 2, 3, 1)), training=False))
        rows.append(_compare(f"{model} G", x_t, x_k, tol))
        rows.append(_compare(f"{model} D", d_t, d_k, tol))
    return rows


def progan_rows(torch, device: str, tol: float) -> list[dict[str, Any]]:
    from progan_common.config import PRESETS, ProGANConfig
    from progan_tf import convert
    from progan_tf.networks import Discriminator, Generator
    from progan_torch import networks as tn

    rows = []
    for model, preset in (("progan", "quick"), ("sn-progan", "sn-progan-quick")):
        cfg = ProGANConfig(**{**PRESETS[preset], "max_res": 32})
        cfg.validate()
        torch.manual_seed(0)
        tg, td = tn.Generator(cfg, 3, 0), tn.Discriminator(cfg, 3, 0)
        kg, kd = Generator(cfg, 3, 0), Discriminator(cfg, 3, 0)
        convert.load_state_dict(kg, tg.state_dict())
        convert.load_state_dict(kd, td.state_dict())
        tg.to(device).eval()
        td.to(device).eval()
        rng = np.random.default_rng(1)
        z = rng.standard_normal((8, cfg.latent_dim)).astype(np.float32)
        for level in range(kg.num_levels):
            for alpha in (1.0, 0.5) if level else (1.0,):
                fading = alpha < 1
                kg.alpha.assign(alpha)
                kd.alpha.assign(alpha)
                with torch.no_grad():
                    x_t = tg(torch.from_numpy(z).to(device), None, level, fading, alpha)
                    d_t = td(x_t, level, fading, alpha)
                    d_t = d_t[0] if isinstance(d_t, tuple) else d_t
                    x_t, d_t = x_t.cpu().numpy(), d_t.cpu().numpy()
                x_k = kg(z, None, level=level, fading=fading).numpy()
                d_k = kd(np.transpose(x_t, (0, 2, 3, 1)), level=level, fading=fading)
                d_k = (d_k[0] if isinstance(d_k, tuple) else d_k).numpy()
                res = 4 * 2**level
                rows.append(
                    _compare(
                        f"{model} G {res}x{res} alpha {alpha}",
                        x_t,
                        np.transpose(x_k, (0, 3, 1, 2)),
                        tol,
                    )
                )
                rows.append(_compare(f"{model} D {res}x{res} alpha {alpha}", d_t, d_k, tol))
    return rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.device_parity",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--device", default="cuda", help="where PyTorch runs: cuda, cuda:N or cpu (default: cuda)"
    )
    p.add_argument(
        "--tol",
        type=float,
        default=DEFAULT_TOL,
        help="largest allowed |torch - tf|, relative to the largest |output| (default: 1e-4)",
    )
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.tol <= 0:
        raise UserError(f"--tol must be positive, got {args.tol}.")
    torch, _ = _frameworks(args.device)
    rows = dcgan_rows(torch, args.device, args.tol) + progan_rows(torch, args.device, args.tol)
    worst = max(rows, key=lambda r: r["max_abs_diff"] / max(r["max_abs_output"], 1e-3))
    failed = [r["what"] for r in rows if not r["ok"]]
    result = {"device": args.device, "tol": args.tol, "rows": rows, "ok": not failed}
    if args.json:
        atomic_write_json(Path(args.json), result)
    print(
        f"parity on {args.device}: {len(rows) - len(failed)}/{len(rows)} comparisons within "
        f"{args.tol:g}; largest difference {worst['max_abs_diff']:.2e} ({worst['what']})"
    )
    for name in failed:
        print(f"  FAILED: {name}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(run_cli(main))
