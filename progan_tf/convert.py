"""Convert ProGAN weights between progan_torch and progan_tf (both directions).

::

    python -m progan_tf.convert torch-to-tf --checkpoint RUN/checkpoints/ckpt-...kimg.pt --out RUN_TF
    python -m progan_tf.convert tf-to-torch --run RUN_TF [--checkpoint DIR] --out weights.pt

Both implementations expose the same module tree (``blocks.K.conv0``, ``torgb.K``,
``fromrgb.K``, ``blocks.0.{dense,conv}`` / ``{conv,dense0,dense1}``) and store the
*raw* equalised weight, so conversion is a transposition per tensor:

- dense: torch ``(out, in)`` <-> Keras ``(in, out)``. The G 4x4 dense and D's flatten
  use channel-first order in both (official NCHW), so no row permutation is needed.
- conv: torch ``(out, in, kh, kw)`` <-> Keras ``(kh, kw, in, out)``.
- ``level`` / ``alpha`` buffers <-> the models' variables.

Only networks are converted (G, D, G_ema); optimiser state is not (Adam is reset at
every level change anyway). Spectral-norm models are refused: the two frameworks
store the power-iteration state differently. torch is imported lazily, only here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from gancore.errors import UserError, file_error, run_cli


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
    """The Keras model's weights under torch state_dict keys, torch layouts, as numpy."""
    from progan_tf.networks import named_layers

    out: dict[str, np.ndarray] = {}
    for name, layer in named_layers(model).items():
        if layer.spectral_norm:
            raise UserError(
                "spectral-norm models cannot be converted (power-iteration state differs)"
            )
        out[f"{name}.weight"] = np.ascontiguousarray(_to_torch(np.asarray(layer.weight.numpy())))
        out[f"{name}.bias"] = np.asarray(layer.bias.numpy())
    out["level"] = np.asarray(int(model.level.numpy()), dtype=np.int64)
    out["alpha"] = np.asarray(float(model.alpha.numpy()), dtype=np.float32)
    return out


def load_state_dict(model, state: dict[str, Any], strict: bool = True) -> None:
    """Assign a torch state_dict (tensors or arrays) to the Keras ``model``.

    Raises with the offending key when shapes or key sets differ, so a mismatched
    config (e.g. a different ``fmap_max``) is caught rather than silently broadcast.
    """
    from progan_tf.networks import named_layers

    arrays = {
        k: (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v))
        for k, v in state.items()
    }
    if any(".parametrizations." in k for k in arrays):
        raise UserError("spectral-norm models cannot be converted (power-iteration state differs)")
    layers = named_layers(model)
    expected = {f"{n}.{p}" for n in layers for p in ("weight", "bias")} | {"level", "alpha"}
    if strict and set(arrays) != expected:
        missing, extra = sorted(expected - set(arrays)), sorted(set(arrays) - expected)
        raise UserError(
            f"state_dict does not match the network: missing {missing[:5]}, "
            f"unexpected {extra[:5]}; was it trained with the same config?"
        )
    for name, layer in layers.items():
        for part in ("weight", "bias"):
            value = _to_keras(part, arrays[f"{name}.{part}"])
            var = getattr(layer, part)
            if tuple(var.shape) != value.shape:
                raise UserError(
                    f"{name}.{part}: torch shape {arrays[f'{name}.{part}'].shape} "
                    f"does not fit Keras shape {tuple(var.shape)}"
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


def read_torch_checkpoint(path: str | Path) -> dict[str, Any]:
    """A progan_torch checkpoint file as a dict, or a one-line UserError saying what is wrong."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"torch checkpoint {path} does not exist (or is not a file).")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    # torch.load on a damaged or foreign file raises almost anything (EOFError,
    # UnpicklingError, RuntimeError, even KeyError: 101 for text): all mean "not readable"
    except Exception as exc:
        raise UserError(
            f"{file_error(path, exc, 'torch checkpoint')}; it is damaged or not a torch checkpoint: "
            "pass a .pt from a progan_torch run's checkpoints/ folder."
        ) from exc
    missing = [k for k in ("config", "meta", "progress", "G", "D")]
    if isinstance(ckpt, dict):
        missing = [k for k in missing if k not in ckpt]
    if missing:
        raise UserError(
            f"{path} is not a progan_torch checkpoint (no {', '.join(missing)}); pass a file "
            "from a progan_torch run's checkpoints/ folder."
        )
    return ckpt


def load_torch_checkpoint(path: str | Path, trainer) -> dict[str, Any]:
    """Load a progan_torch checkpoint file's G, D and G_ema into a progan_tf trainer."""
    ckpt = read_torch_checkpoint(path)
    for key in ("G", "D", "G_ema"):
        model = getattr(trainer, key, None)
        if model is not None and ckpt.get(key) is not None:
            load_state_dict(model, ckpt[key])
    return ckpt


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m progan_tf.convert",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("torch-to-tf", help="progan_torch .pt checkpoint -> new progan_tf run dir")
    a.add_argument("--checkpoint", required=True, help="progan_torch checkpoint file (.pt)")
    a.add_argument(
        "--out", required=True, help="run directory to create (config.json + checkpoint)"
    )
    b = sub.add_parser("tf-to-torch", help="progan_tf checkpoint -> torch state_dicts (.pt)")
    b.add_argument("--run", required=True, help="progan_tf run directory")
    b.add_argument("--checkpoint", default=None, help="checkpoint directory (default: latest)")
    b.add_argument("--out", required=True, help="output .pt with {'G','D','G_ema'} state_dicts")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    from gancore.config import config_from_dict, config_to_dict
    from gancore.io import atomic_path
    from gancore.rundir import RunDir
    from progan_common.config import ProGANConfig
    from progan_tf.checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint
    from progan_tf.training import Trainer

    if args.cmd == "torch-to-tf":
        ckpt = read_torch_checkpoint(args.checkpoint)
        cfg = config_from_dict(ProGANConfig, ckpt["config"])
        meta = ckpt["meta"]
        trainer = Trainer(cfg, meta["img_channels"], meta["num_classes"])
        load_torch_checkpoint(args.checkpoint, trainer)
        nimg = int(ckpt["progress"]["nimg"])
        trainer.nimg.assign(nimg)
        run = RunDir(args.out)
        run.create(
            {
                **config_to_dict(cfg),
                "model": "progan",
                "framework": "tf",
                "converted_from": str(args.checkpoint),
            }
        )
        path = save_checkpoint(
            run,
            trainer,
            nimg / 1000.0,
            {**meta, "nimg": nimg, "converted_from": str(args.checkpoint)},
        )
        print(f"wrote {path} (networks only; optimiser state starts fresh)")
    else:
        run = RunDir(args.run)
        cfg = config_from_dict(ProGANConfig, run.read_config())
        path = resolve_checkpoint(run, args.checkpoint)
        from gancore.io import read_json

        meta = read_json(Path(path) / "meta.json")
        trainer = Trainer(cfg, meta["img_channels"], meta["num_classes"])
        load_checkpoint(path, trainer)
        out = {k: torch_state_dict(getattr(trainer, k)) for k in ("G", "D")}
        out["G_ema"] = torch_state_dict(trainer.G_ema) if trainer.G_ema is not None else None
        out.update(config=config_to_dict(cfg), meta=meta)
        with atomic_path(args.out, suffix=".pt") as tmp:
            torch.save(out, tmp)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
