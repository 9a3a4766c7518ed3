import json
import subprocess
import sys
from dataclasses import dataclass, field

import numpy as np
import pytest

from gancore import UserError
from gancore.config import (
    add_dataclass_arguments,
    build_config,
    config_from_dict,
    config_to_dict,
    overrides_from_namespace,
)
from gancore.grid import make_grid, to_uint8
from gancore.io import atomic_path, atomic_write_json, read_json
from gancore.rundir import RunDir
from gancore.samples import load_samples, save_samples
from gancore.train.schema import CheckpointMeta


def test_gancore_imports_no_framework():
    code = (
        "import sys, gancore, gancore.config, gancore.rundir, progan_common.schedule, gancore.grid, "
        "gancore.samples, gancore.hardware; "
        "print(sorted(m for m in ('torch', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_atomic_path_leaves_dest_on_error(tmp_path):
    dest = tmp_path / "x.json"
    atomic_write_json(dest, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert read_json(dest) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_rundir_log_and_checkpoint_pointer(tmp_path):
    run = RunDir(tmp_path / "run")
    run.create({"lr": 1})
    with pytest.raises(UserError, match="--resume"):
        run.create({"lr": 2})
    run.log({"kimg": 1.0, "loss": np.float32(0.5)})
    with open(run.log_path, "a") as fh:
        fh.write('{"kimg": 2.0, "lo')  # torn line from a crash
    assert [r["kimg"] for r in run.read_log()] == [1.0]
    for k in range(5):
        p = run.checkpoint_path(k, ".bin")
        p.write_bytes(b"x")
        run.commit_checkpoint(p, CheckpointMeta(k * 1000, k, 0.0, 0), keep=2)
    assert run.latest_checkpoint().name == run.checkpoint_path(4, ".bin").name
    assert [e["nimg"] for e in run.checkpoint_entries()] == [3000, 4000]
    assert len(run.checkpoint_entries()) == 2
    assert len(list(run.checkpoints.glob("*.bin"))) == 2


@dataclass
class _Cfg:
    lr: float = field(default=0.1, metadata={"help": "learning rate"})
    mirror: bool = False
    batches: dict[int, int] = field(default_factory=dict)
    name: str | None = None

    def validate(self):
        if self.lr <= 0:
            raise ValueError("lr must be positive")


def test_config_cli_presets_and_roundtrip():
    import argparse

    p = argparse.ArgumentParser()
    add_dataclass_arguments(p, _Cfg)
    ns = p.parse_args(["--mirror", "--batches", "4:8,8:4"])
    cfg = build_config(_Cfg, {"fast": {"lr": 0.5}}, "fast", overrides_from_namespace(ns, _Cfg))
    assert cfg.lr == 0.5 and cfg.mirror and cfg.batches == {4: 8, 8: 4}
    again = config_from_dict(_Cfg, json.loads(json.dumps(config_to_dict(cfg))))
    assert again == cfg
    with pytest.raises(UserError, match="lr must be positive"):
        build_config(_Cfg, None, None, {"lr": -1})
    with pytest.raises(UserError, match="unknown preset"):
        build_config(_Cfg, {}, "nope")


def test_grid_and_samples_roundtrip(tmp_path):
    imgs = to_uint8(np.linspace(-1.2, 1.2, 5 * 4 * 4 * 3).reshape(5, 4, 4, 3))
    assert imgs.min() == 0 and imgs.max() == 255
    grid = make_grid(imgs, ncol=3, pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1, 3)
    save_samples(tmp_path / "s.npz", imgs, np.arange(5))
    back, seeds, _ = load_samples(tmp_path / "s.npz")
    assert np.array_equal(back, imgs) and list(seeds) == [0, 1, 2, 3, 4]
    with pytest.raises(UserError, match="uint8"):
        save_samples(tmp_path / "bad.npz", imgs.astype(np.float32), np.arange(5))


def test_atomic_write_has_normal_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "p.json", {"a": 1})
    finally:
        os.umask(umask)
    assert (tmp_path / "p.json").stat().st_mode & 0o777 == 0o644
