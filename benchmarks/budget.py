"""How long each run of a profile is, before it starts: ``python -m benchmarks.budget``.

Under an equal-compute budget (``--tflop``) a run's length in images follows from its model's
training FLOPs per image, which only the model code can count (with torch, on meta tensors).
The harness never imports a framework, so it asks this module in a subprocess: it reads a
JSON list of trainer argv lists on stdin and prints, for each, the resolved ``kimg`` and the
run's training ``tflop`` (the budget, or on the images axis the count over the run's
schedule), using the trainers' own parsers, config resolution and FLOP counters.
"""

from __future__ import annotations

import json
import sys


def resolve(argv: list[str]) -> dict[str, float | None]:
    """``{"kimg": ..., "tflop": ...}`` of one trainer command (``python -m MODULE FLAGS...``)."""
    i = argv.index("-m")
    module, flags = argv[i + 1], argv[i + 2 :]
    if module == "vanilla_gan.train":
        from vanilla_gan.flops import step_flops_per_image
        from vanilla_gan.train import parser
        from vanilla_gan.train import resolve as resolve_vanilla

        cfg = resolve_vanilla(parser().parse_args(flags))
        flops = step_flops_per_image(cfg) * cfg.kimg * 1000.0
    else:
        import importlib

        from gancore.train.cli import resolve_config
        from progan_common.cli import with_compute_budget
        from progan_common.config import PRESETS, ProGANConfig

        ns = importlib.import_module(module).build_parser().parse_args(flags)
        from gancore.train.estimate import schedule_flops
        from progan_torch.flops import step_flops_per_image as per_image

        cfg = with_compute_budget(resolve_config(ProGANConfig, PRESETS, ns))
        flops = schedule_flops(
            cfg.schedule(),
            int(round(cfg.kimg * 1000)),
            lambda res, fading: per_image(cfg, res, fading),
        )
    return {"kimg": cfg.kimg, "tflop": flops / 1e12}


def main(argv: list[str] | None = None) -> int:
    import argparse

    from gancore.helptext import HelpFormatter

    argparse.ArgumentParser(
        prog="python -m benchmarks.budget", description=__doc__, formatter_class=HelpFormatter
    ).parse_args(argv)
    commands = json.load(sys.stdin)
    print(json.dumps([resolve(argv) for argv in commands]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
