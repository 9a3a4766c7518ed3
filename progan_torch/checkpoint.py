"""ProGAN (PyTorch) checkpoint files: one ``torch.save`` dict of tensors and plain values.

Kept to types ``torch.load(..., weights_only=True)`` accepts (never unpickle arbitrary
objects). Contents: ``G``, ``D``, ``G_ema`` state_dicts (the ``level``/``alpha`` buffers of the
last trained stage included), ``opt_g``/``opt_d`` Adam states, ``meta`` (the loop's
:class:`gancore.train.schema.CheckpointMeta` plus image channels and classes) and ``config``
(the full :class:`ProGANConfig`, so a checkpoint file describes itself). Written through a
temporary file by the trainer; committed by the loop.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from gancore import torch_utils as tu
from gancore.config import config_from_dict
from gancore.errors import UserError
from progan_common.config import ProGANConfig

FORMAT = "progan_torch/2"


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    ckpt = tu.load_file(path, map_location)
    if ckpt.get("format") != FORMAT:
        raise UserError(
            f"{path} is not a progan_torch checkpoint (format {ckpt.get('format')!r}, expected "
            f"{FORMAT!r}); a TensorFlow run is sampled with python -m progan_tf.sample."
        )
    return ckpt


def config_of(ckpt: dict[str, Any]) -> ProGANConfig:
    return config_from_dict(ProGANConfig, ckpt["config"])
