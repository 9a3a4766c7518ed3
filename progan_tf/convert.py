"""Convert ProGAN weights between progan_torch and progan_tf (both directions).

::

    python -m progan_tf.convert torch-to-tf --run runs/pg --out runs/pg-as-tf
    python -m progan_tf.convert tf-to-torch --run runs/pg-tf --out runs/pg-tf-as-torch

Each writes a complete run directory of the other framework (config.json naming where it came
from, one committed checkpoint), which that framework's ``sample`` CLI reads like any run of
its own.

Both implementations expose the same module tree (``blocks.K.conv0``, ``torgb.K``,
``fromrgb.K``, ``blocks.0.{dense,conv}`` / ``{conv,dense0,dense1}``) and store the
*raw* equalised weight, so conversion is a transposition per tensor:

- dense: torch ``(out, in)`` <-> Keras ``(in, out)``. The G 4x4 dense and D's flatten
  use channel-first order in both (official NCHW), so no row permutation is needed.
- conv: torch ``(out, in, kh, kw)`` <-> Keras ``(kh, kw, in, out)``.
- ``level`` / ``alpha`` buffers <-> the models' variables.

Spectrally normalised layers (SN-ProGAN) convert too: both frameworks keep the raw weight and
torch's u, v vectors of the same (out, in*k*k) matrix, so ``...parametrizations.weight.original``
/ ``..._u`` / ``..._v`` map to the Keras layer's ``weight`` / ``sn_u`` / ``sn_v``.

Only networks are converted (G, D, G_ema); the optimiser state starts fresh (a resumed
converted run restarts Adam, as the official code does at every level change anyway).
torch is imported lazily, only here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from gancore.errors import UserError, run_cli
from gancore.helptext import HelpFormatter


def _to_keras(name: str, array: np.ndarray) -> np.ndarray:
    if array.ndim == 4:
        return np.transpose(array, (2, 3, 1, 0))
    if array.ndim == 2:
        return array.T
    return array


def _to_torch(array: np.ndarray) -> np.ndarray:
    if array.ndim == 4:
        return np.transpose(array, (3, 2, 0, 1))
    if array.ndim == 2:
        return array.T
    return array


def keras_state_dict(model) -> dict[str, np.ndarray]:
    """The Keras model's weights under torch state_dict keys, torch layouts, as numpy
    (spectrally normalised layers: the raw weight and u, v under ``parametrizations.weight``)."""
    from progan_tf.networks import layer_keys, named_layers

    out: dict[str, np.ndarray] = {}
    for name, layer in named_layers(model).items():
        for attr, key in layer_keys(name, layer).items():
            value = np.asarray(getattr(layer, attr).numpy())
            out[key] = np.ascontiguousarray(_to_torch(value)) if attr == "weight" else value
    out["level"] = np.asarray(int(model.level.numpy()), dtype=np.int64)
    out["alpha"] = np.asarray(float(model.alpha.numpy()), dtype=np.float32)
    return out


def load_state_dict(model, state: dict[str, Any], strict: bool = True) -> None:
    """Assign a torch state_dict (tensors or arrays) to the Keras ``model``.

    Raises with the offending key when shapes or key sets differ, so a mismatched
    config (e.g. a different ``fmap_max``, or spectral norm on one side only) is caught
    rather than silently broadcast.
    """
    from progan_tf.networks import layer_keys, named_layers

    arrays = {
        k: (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v))
        for k, v in state.items()
    }
    layers = named_layers(model)
    keys = {name: layer_keys(name, layer) for name, layer in layers.items()}
    expected = {k for per in keys.values() for k in per.values()} | {"level", "alpha"}
    if strict and set(arrays) != expected:
        missing, extra = sorted(expected - set(arrays)), sorted(set(arrays) - expected)
        raise UserError(
            f"state_dict does not match the network: missing {missing[:5]}, "
            f"unexpected {extra[:5]}; was it trained with the same config?"
        )
    for name, layer in layers.items():
        for attr, key in keys[name].items():
            value = _to_keras(attr, arrays[key]) if attr == "weight" else arrays[key]
            var = getattr(layer, attr)
            if tuple(var.shape) != value.shape:
                raise UserError(
                    f"{key}: torch shape {arrays[key].shape} does not fit Keras shape "
                    f"{tuple(var.shape)}"
                )
            var.assign(value.astype(np.float32))
    if "level" in arrays:
        model.level.assign(int(arrays["level"]))
    if "alpha" in arrays:
        model.alpha.assign(float(arrays["alpha"]))


def torch_state_dict(model) -> dict[str, Any]:
    """Keras model -> torch state_dict (``torch.Tensor`` values; imports torch)."""
    import torch

    sd = keras_state_dict(model)
    return {k: torch.from_numpy(np.array(v)) for k, v in sd.items()}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m progan_tf.convert",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, src, dst in (
        ("torch-to-tf", "progan_torch", "progan_tf"),
        ("tf-to-torch", "progan_tf", "progan_torch"),
    ):
        a = sub.add_parser(name, help=f"a {src} run -> a new {dst} run directory")
        a.add_argument("--run", required=True, help=f"the {src} run directory to convert")
        a.add_argument(
            "--checkpoint", default=None, help="a checkpoint of that run (default: its newest)"
        )
        a.add_argument("--out", required=True, help=f"{dst} run directory to create")
        a.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    from gancore.config import config_from_dict, config_to_dict
    from gancore.rundir import RunDir
    from gancore.train.schema import CheckpointMeta, RunInfo, run_config
    from gancore.train.session import checkpoint_for_sampling, read_run
    from progan_common.config import ProGANConfig
    from progan_tf.training import ProGANTrainer as TFTrainer
    from progan_torch.training import ProGANTrainer as TorchTrainer

    src_fw, dst_fw = ("torch", "tf") if args.cmd == "torch-to-tf" else ("tf", "torch")
    info, config = read_run(args.run, (f"progan_{src_fw}.train",))
    cfg = config_from_dict(ProGANConfig, config)
    path = checkpoint_for_sampling(args.run, args.checkpoint, (f"progan_{src_fw}.train",))
    channels, classes = info.img_channels, info.num_classes
    if src_fw == "torch":
        from progan_torch.checkpoint import load_checkpoint

        ckpt = load_checkpoint(path)
        meta = CheckpointMeta.from_dict(ckpt["meta"])
        states = {k: ckpt[k] for k in ("G", "D", "G_ema")}
        dst = TFTrainer(cfg, channels, classes)
        for k, state in states.items():
            if getattr(dst, k) is not None and state is not None:
                load_state_dict(getattr(dst, k), state)
    else:
        src = TFTrainer(cfg, channels, classes)
        meta = src.load(path)
        dst = TorchTrainer(cfg, channels, classes, channels_last=False)
        for k in ("G", "D", "G_ema"):
            if getattr(src, k) is not None:
                getattr(dst.m, k).load_state_dict(torch_state_dict(getattr(src, k)))
    out = RunDir(args.out)
    note = f"{info.entry_point} run {args.run}, checkpoint {path.name}"
    new_info = RunInfo(
        model=info.model,
        framework=dst_fw,
        entry_point=f"progan_{dst_fw}.train",
        img_channels=channels,
        num_classes=classes,
        dataset=info.dataset,
        random_data=info.random_data,
        hardware=info.hardware,
        converted_from=note,
    )
    with out.lock():
        out.create(run_config(new_info, config_to_dict(cfg)), overwrite=args.overwrite)
        target = out.checkpoint_path(meta.kimg, dst.checkpoint_ext)
        meta.framework = dst_fw
        dst.save(target, meta)
        out.commit_checkpoint(target, meta)
        out.set_status("converted", kimg=meta.kimg, error=None)
    print(
        f"wrote {target} in the new {dst_fw} run {out.path} (networks at {meta.kimg:g} kimg; "
        f"the optimiser state starts fresh); sample it with python -m progan_{dst_fw}.sample "
        f"--run {out.path} --n 16 --out {out.path}/samples.npz"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
