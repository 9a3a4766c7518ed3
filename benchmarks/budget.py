"""How long each run of a profile is, before it starts: ``python -m benchmarks.budget``.

Under an equal-compute budget (``--tflop``) a run's length in images follows from its model's
training FLOPs per image, which only the model code can count (with torch, on meta tensors).
The harness never imports a framework, so it asks this module in a subprocess: it reads a
JSON list of trainer argv lists on stdin and prints, for each, the resolved ``kimg`` and
``tflop``, using the trainers' own parsers and config resolution.
"""

from __future__ import annotations

import json
import sys


def resolve(argv: list[str]) -> dict[str, float | None]:
    """``{"kimg": ..., "tflop": ...}`` of one trainer command (``python -m MODULE FLAGS...``)."""
    i = argv.index("-m")
    module, flags = argv[i + 1], argv[i + 2 :]
    if module == "vanilla_gan.train":
        from vanilla_gan.train import parser
        from vanilla_gan.train import resolve as resolve_vanilla

        cfg = resolve_vanilla(parser().parse_args(flags))
    else:
        import importlib

        from gancore.train.cli import resolve_config
        from progan_common.cli import with_compute_budget
        from progan_common.config import PRESETS, ProGANConfig

        ns = importlib.import_module(module).build_parser().parse_args(flags)
        cfg = with_compute_budget(resolve_config(ProGANConfig, PRESETS, ns))
    return {"kimg": cfg.kimg, "tflop": cfg.tflop}


def main() -> int:
    commands = json.load(sys.stdin)
    print(json.dumps([resolve(argv) for argv in commands]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
