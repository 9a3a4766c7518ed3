"""Move weights from the PyTorch models to the Keras ones (G and D, EMA G too).

Copies weights, biases, BN scale/shift/running statistics and the spectral-norm
u, v vectors, so in eval mode the two frameworks give the same outputs for the
same inputs (tested to 1e-4). Layout maps (torch -> Keras):

* Linear (out, in)               -> (in, out)
* Conv2d (out, in, kh, kw)       -> (kh, kw, in, out)
* ConvTranspose2d (in, out, kh, kw) -> (kh, kw, out, in)

Dense layers need no further permutation because the Keras models flatten in
torch's (C, H, W) order (see ``tf_nets``).

CLI::

    python -m vanilla_gan.convert --run RUN_DIR --out KERAS_DIR [--checkpoint PATH]

loads a torch run's checkpoint and writes ``generator.weights.h5``
(the EMA generator when the run has one) and ``discriminator.weights.h5``.
"""

from __future__ import annotations

import argparse
import os
import sys

if __package__ in (None, ""):  # allow `python convert.py` from inside vanilla_gan/
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from gancore.errors import UserError, file_error, run_cli


def _torch_layers(model) -> list:
    """Modules that hold weights, in forward order (Linear, Conv, ConvT, BN)."""
    from torch import nn

    kinds = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm1d, nn.BatchNorm2d)
    return [m for m in model.modules() if isinstance(m, kinds)]


def _keras_layers(model) -> list:
    import keras

    from vanilla_gan.tf_nets import TorchStyle

    return [
        lyr
        for lyr in model.layers
        if isinstance(lyr, (TorchStyle, keras.layers.BatchNormalization))
    ]


def _np(t) -> np.ndarray:
    return t.detach().cpu().float().numpy()


def _kernel_to_keras(module, w: np.ndarray) -> np.ndarray:
    from torch import nn

    if isinstance(module, nn.Linear):
        return w.T
    if isinstance(module, nn.ConvTranspose2d):
        return np.transpose(w, (2, 3, 1, 0))
    return np.transpose(w, (2, 3, 1, 0))  # Conv2d (out, in, kh, kw) -> (kh, kw, in, out)


def copy_torch_to_keras(torch_model, keras_model) -> None:
    """Copy every weight of ``torch_model`` into the same-architecture ``keras_model``."""
    from torch import nn

    src, dst = _torch_layers(torch_model), _keras_layers(keras_model)
    if len(src) != len(dst):
        raise ValueError(f"layer count differs: torch {len(src)}, keras {len(dst)}")
    for m, k in zip(src, dst):
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            k.set_weights([_np(m.weight), _np(m.bias), _np(m.running_mean), _np(m.running_var)])
            continue
        sn = hasattr(m, "parametrizations") and "weight" in m.parametrizations
        if sn != bool(k.spec.sn):
            raise ValueError(f"spectral norm switch differs between {m} and {k.name}")
        raw = m.parametrizations.weight.original if sn else m.weight
        k.kernel.assign(_kernel_to_keras(m, _np(raw)))
        if m.bias is not None:
            k.bias.assign(_np(m.bias))
        if sn:
            par = m.parametrizations.weight[0]
            k.sn_u.assign(_np(par._u))
            k.sn_v.assign(_np(par._v))


def check_torch_checkpoint(path: str) -> None:
    """A one-line UserError unless ``path`` is a readable vanilla_gan torch checkpoint."""
    import torch

    if not os.path.isfile(path):
        raise UserError(f"checkpoint {path} does not exist (or is not a file).")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    # torch.load on a damaged or foreign file raises almost anything (EOFError,
    # UnpicklingError, RuntimeError, even KeyError: 101 for text): all mean "not readable"
    except Exception as exc:
        raise UserError(
            f"{file_error(path, exc, 'checkpoint')}; it is damaged or not a torch checkpoint: "
            "pass a .pt from a vanilla_gan torch run's checkpoints/ folder."
        ) from exc
    if not isinstance(obj, dict) or "G" not in obj or "D" not in obj:
        raise UserError(
            f"{path} is not a vanilla_gan torch checkpoint (no 'G' and 'D' networks); pass a "
            "file from a torch run's checkpoints/ folder."
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m vanilla_gan.convert",
        description=("Convert a PyTorch vanilla_gan run's networks to Keras .weights.h5 files."),
    )
    ap.add_argument("--run", required=True, help="torch run directory (has config.json)")
    ap.add_argument("--checkpoint", default=None, help="checkpoint file (default: the latest)")
    ap.add_argument("--out", required=True, help="folder for the Keras weight files")
    args = ap.parse_args(argv)

    from vanilla_gan.torch_loop import load_for_inference

    if args.checkpoint is not None:
        check_torch_checkpoint(args.checkpoint)
    cfg, G, D, channels, _ = load_for_inference(args.run, args.checkpoint, device="cpu")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from vanilla_gan import tf_nets

    kG, kD = tf_nets.build_models(cfg, channels)
    copy_torch_to_keras(G, kG)
    copy_torch_to_keras(D, kD)
    os.makedirs(args.out, exist_ok=True)
    kG.save_weights(os.path.join(args.out, "generator.weights.h5"))
    kD.save_weights(os.path.join(args.out, "discriminator.weights.h5"))
    print(f"wrote {args.out}/generator.weights.h5 and discriminator.weights.h5")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
