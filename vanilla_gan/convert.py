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

    python -m vanilla_gan.convert --run runs/dcgan-torch --out runs/dcgan-torch-as-tf

writes a complete TensorFlow run directory (config.json naming its source, one committed
checkpoint with G, D and the EMA G), which ``python -m vanilla_gan.sample`` reads.
"""

from __future__ import annotations

import argparse
import os
import sys

if __package__ in (None, ""):  # allow `python convert.py` from inside vanilla_gan/
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from gancore.errors import run_cli


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m vanilla_gan.convert",
        description="Convert a PyTorch vanilla_gan run into a TensorFlow/Keras run directory "
        "(G, D and the EMA G; the optimiser state starts fresh), which python -m "
        "vanilla_gan.sample reads like any TF run.",
    )
    ap.add_argument("--run", required=True, help="the PyTorch run directory to convert")
    ap.add_argument(
        "--checkpoint", default=None, help="a checkpoint of that run (default: its newest)"
    )
    ap.add_argument("--out", required=True, help="the TensorFlow run directory to create")
    ap.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    args = ap.parse_args(argv)

    import dataclasses

    from gancore.config import config_to_dict
    from gancore.rundir import RunDir
    from gancore.train.schema import CheckpointMeta, run_config
    from gancore.train.session import checkpoint_for_sampling, read_run
    from vanilla_gan import torch_nets
    from vanilla_gan.rundata import read_run as read_vanilla
    from vanilla_gan.torch_training import load_checkpoint

    info, _ = read_run(args.run, ("vanilla_gan.train",))
    cfg, _, channels = read_vanilla(args.run, "torch")
    path = checkpoint_for_sampling(args.run, args.checkpoint, ("vanilla_gan.train",))
    ckpt = load_checkpoint(path)
    tf_cfg = dataclasses.replace(cfg, framework="tf")
    from vanilla_gan.tf_training import TFTrainer

    trainer = TFTrainer(tf_cfg, channels)
    for name in ("G", "D", "G_ema"):
        state = ckpt.get(name)
        target = getattr(trainer, name)
        if state is None or target is None:
            continue
        G, D = torch_nets.build_models(cfg, channels)
        module = D if name == "D" else G
        module.load_state_dict(state)
        copy_torch_to_keras(module.eval(), target)
    meta = CheckpointMeta.from_dict(ckpt["meta"])
    meta.framework = "tf"
    out = RunDir(args.out)
    new_info = dataclasses.replace(
        info, framework="tf", converted_from=f"{args.run}, checkpoint {path.name}"
    )
    with out.lock():
        out.create(run_config(new_info, config_to_dict(tf_cfg)), overwrite=args.overwrite)
        target = out.checkpoint_path(meta.kimg, trainer.checkpoint_ext)
        trainer.save(target, meta)
        out.commit_checkpoint(target, meta)
        out.set_status("converted", kimg=meta.kimg)
    print(
        f"wrote {target} in the new TensorFlow run {out.path}; sample it with python -m "
        f"vanilla_gan.sample --run {out.path} --n 16 --out {out.path}/samples.npz"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
