"""The run directory contract (DESIGN.md section 2).

::

    RUN_DIR/
      config.json        everything needed to rebuild the run (written before training)
      log.jsonl          one JSON object per tick (kimg, losses, images/s, ...)
      checkpoints/       ckpt-<kimg>.<ext> files plus latest.json, the pointer to the
                         newest complete one (never inferred from file names)
      samples/           fixed-latent PNG grids
      status.json        "running" / "finished" / "failed: ..." for the harness

Checkpoints are written by the framework (``torch.save`` or ``tf.train.Checkpoint``)
into a path obtained from :meth:`RunDir.checkpoint_path`; only after the write has
completed does :meth:`RunDir.commit_checkpoint` move ``latest.json`` to it. A crash
during the write therefore never replaces the last good checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from gancore.errors import UserError
from gancore.io import atomic_write_json, read_json

LATEST = "latest.json"


class RunDir:
    """A training run's folder. Cheap to construct; creates nothing until asked."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    # ------------------------------------------------------------------ paths
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def log_path(self) -> Path:
        return self.path / "log.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    # ---------------------------------------------------------------- config
    def create(self, config: dict[str, Any], overwrite: bool = False) -> None:
        """Start a new run: make the folders and write ``config.json``.

        Refuses to reuse a folder that already holds a run unless ``overwrite``
        (the user probably meant ``--resume``).
        """
        if self.config_path.exists() and not overwrite:
            raise UserError(
                f"{self.path} already holds a run (config.json exists). "
                f"Pass --resume {self.path} to continue it, or choose another --out."
            )
        if overwrite and self.path.exists():
            for sub in (self.checkpoints, self.samples):
                shutil.rmtree(sub, ignore_errors=True)
            for f in (self.log_path, self.status_path):
                f.unlink(missing_ok=True)
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        self.samples.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.config_path, config)
        self.set_status("created")

    def read_config(self) -> dict[str, Any]:
        if not self.config_path.exists():
            raise UserError(f"{self.path} is not a run directory (no config.json found).")
        return read_json(self.config_path)

    # ------------------------------------------------------------------- log
    def log(self, record: dict[str, Any]) -> None:
        """Append one JSON line to ``log.jsonl`` (flushed, so a crash keeps it)."""
        line = json.dumps(record, sort_keys=True, default=_plain)
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()

    def read_log(self) -> list[dict[str, Any]]:
        """All complete log records; a torn last line (crash mid-write) is ignored."""
        if not self.log_path.exists():
            return []
        records = []
        with open(self.log_path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return records

    def truncate_log(self, kimg: float) -> None:
        """Drop records after ``kimg`` (used on resume: ticks after the checkpoint replay)."""
        kept = [r for r in self.read_log() if float(r.get("kimg", 0.0)) <= kimg + 1e-9]
        tmp = self.log_path.with_suffix(".jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for r in kept:
                fh.write(json.dumps(r, sort_keys=True, default=_plain) + "\n")
        os.replace(tmp, self.log_path)

    # ----------------------------------------------------------- checkpoints
    def checkpoint_path(self, kimg: float, ext: str) -> Path:
        """Where to write the checkpoint for ``kimg`` (``ext`` like ``.pt``)."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        return self.checkpoints / f"ckpt-{kimg:010.3f}kimg{ext}"

    def commit_checkpoint(self, path: Path, kimg: float, keep: int = 3, **meta: Any) -> None:
        """Point ``latest.json`` at a fully written checkpoint and prune old ones.

        ``keep`` newest checkpoints are kept (0 keeps all); files named in
        ``meta['keep_forever']`` lists are never pruned.
        """
        index = self._index()
        entry = {"file": path.name, "kimg": float(kimg), "time": time.time(), **meta}
        index["history"] = [e for e in index.get("history", []) if e["file"] != path.name]
        index["history"].append(entry)
        index["latest"] = entry
        if keep > 0 and len(index["history"]) > keep:
            old, index["history"] = index["history"][:-keep], index["history"][-keep:]
        else:
            old = []
        atomic_write_json(self.checkpoints / LATEST, index)
        for e in old:
            if not e.get("keep_forever"):
                target = self.checkpoints / e["file"]
                if target.is_dir():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    target.unlink(missing_ok=True)

    def latest_checkpoint(self) -> Path | None:
        entry = self._index().get("latest")
        if not entry:
            return None
        path = self.checkpoints / entry["file"]
        return path if path.exists() else None

    def checkpoint_entries(self) -> list[dict[str, Any]]:
        """Metadata of the checkpoints still on disk, oldest first."""
        return [
            e for e in self._index().get("history", []) if (self.checkpoints / e["file"]).exists()
        ]

    def _index(self) -> dict[str, Any]:
        p = self.checkpoints / LATEST
        return read_json(p) if p.exists() else {}

    # ---------------------------------------------------------------- status
    def set_status(self, state: str, **extra: Any) -> None:
        atomic_write_json(self.status_path, {"state": state, "time": time.time(), **extra})

    def status(self) -> dict[str, Any]:
        return read_json(self.status_path) if self.status_path.exists() else {"state": "missing"}


def _plain(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
