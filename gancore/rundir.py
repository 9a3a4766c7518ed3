"""The run directory: one training run's folder (layout in :mod:`gancore.train.schema`).

Checkpoints are written by a trainer into a path from :meth:`RunDir.checkpoint_path`; only
after the write has completed does :meth:`RunDir.commit_checkpoint` point
``checkpoints/latest.json`` at it, so a crash mid-write never replaces the last good one.

Everything read back from the folder is checked before it is used: a checkpoint name in
``latest.json`` must be a plain file name inside ``checkpoints/`` (an edited or crafted index
can neither load nor delete anything elsewhere), and only names of the checkpoint pattern are
ever pruned.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gancore.errors import UserError, file_error
from gancore.io import atomic_write_json, read_json

LATEST = "latest.json"
LOCK = ".lock"
# Checkpoints are ``ckpt-<kimg>kimg<ext>``; temporaries of an interrupted write start with a
# dot and end in ``.tmp`` (gancore.io.atomic_path, and the TF trainers' temporary folders).
CHECKPOINT_NAME = re.compile(r"^ckpt-\d{6,}\.\d{3}kimg(\.[a-z]+)?$")
TEMPORARY_NAME = re.compile(r"^\.ckpt-.*\.tmp$")


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

        Refuses to reuse a folder that already holds a run unless ``overwrite`` (the user
        probably meant ``--resume``); with ``overwrite`` the old checkpoints, grids, log and
        status go, other files in the folder stay.
        """
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"--out {self.path} is a file, not a folder; choose another path.")
        if self.config_path.exists() and not overwrite:
            raise UserError(
                f"{self.path} already holds a run (config.json exists). "
                f"Pass --resume {self.path} to continue it, --overwrite to start it again, "
                "or choose another --out."
            )
        try:
            if overwrite and self.path.exists():
                for sub in (self.checkpoints, self.samples):
                    shutil.rmtree(sub, ignore_errors=True)
                for f in (self.log_path, self.status_path):
                    f.unlink(missing_ok=True)
            self.checkpoints.mkdir(parents=True, exist_ok=True)
            self.samples.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.config_path, config)
        except OSError as exc:
            raise UserError(
                f"cannot write the run directory {self.path}: {exc.strerror or exc}; "
                "choose a writable --out."
            ) from exc
        self.set_status("created")

    def read_config(self) -> dict[str, Any]:
        """``config.json`` as a dict; a clear error when it is missing, not JSON or not an object."""
        if not self.config_path.is_file():
            raise UserError(
                f"{self.path} is not a run directory (no config.json); "
                "pass the folder a trainer's --out created."
            )
        try:
            data = read_json(self.config_path)
        except (OSError, ValueError) as exc:
            raise file_error(self.config_path, exc, "run configuration") from exc
        if not isinstance(data, dict):
            raise UserError(
                f"{self.config_path} is not a run configuration (a JSON object was expected)."
            )
        return data

    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write_json(self.config_path, config)

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
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(rec, dict):
                    records.append(rec)
        return records

    def truncate_log(self, kimg: float) -> None:
        """Drop records after ``kimg`` (on resume: the ticks after the checkpoint are replayed)."""
        kept = [r for r in self.read_log() if float(r.get("kimg", 0.0)) <= kimg + 1e-9]
        tmp = self.log_path.with_suffix(".jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for r in kept:
                fh.write(json.dumps(r, sort_keys=True, default=_plain) + "\n")
        os.replace(tmp, self.log_path)

    # ----------------------------------------------------------- checkpoints
    def checkpoint_path(self, kimg: float, ext: str) -> Path:
        """Where to write the checkpoint for ``kimg`` (``ext`` like ``.pt``; "" for a folder)."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        return self.checkpoints / f"ckpt-{kimg:010.3f}kimg{ext}"

    def commit_checkpoint(self, path: Path, meta: Any, keep: int = 3) -> None:
        """Point ``latest.json`` at a fully written checkpoint, then prune the oldest.

        ``meta`` (a dataclass or dict) is stored in the index entry, so readers learn the
        checkpoint's position without opening it. ``keep`` newest are kept (0 keeps all).
        """
        name = self._checked_name(path.name)
        if path.parent.resolve() != self.checkpoints.resolve():
            raise UserError(f"checkpoint {path} is not inside {self.checkpoints}")
        info = asdict(meta) if hasattr(meta, "__dataclass_fields__") else dict(meta)
        index = self._index()
        history = [e for e in index.get("history", []) if e.get("file") != name]
        entry = {"file": name, "time": time.time(), **info}
        entry.setdefault("kimg", info.get("nimg", 0) / 1000.0)
        history.append(entry)
        old: list[dict[str, Any]] = []
        if keep > 0 and len(history) > keep:
            old, history = history[:-keep], history[-keep:]
        atomic_write_json(self.checkpoints / LATEST, {"latest": entry, "history": history})
        for e in old:
            target = self._entry_path(e)
            if target is None:
                continue
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)

    def checkpoint_entries(self) -> list[dict[str, Any]]:
        """Index entries of the checkpoints still on disk, oldest first (names checked)."""
        out = []
        for e in self._index().get("history", []):
            p = self._entry_path(e)
            if p is not None and p.exists():
                out.append({**e, "path": p})
        return out

    def latest_checkpoint(self) -> Path | None:
        """The newest committed checkpoint that exists, else None."""
        entries = self.checkpoint_entries()
        return entries[-1]["path"] if entries else None

    def _entry_path(self, entry: Any) -> Path | None:
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise UserError(
                f"{self.checkpoints / LATEST} has an entry without a file name; the index is "
                "damaged. Fix or delete that file by hand (older checkpoints are listed in it)."
            )
        return self.checkpoints / self._checked_name(entry["file"])

    def _checked_name(self, name: str) -> str:
        """A checkpoint name must be a plain name of the checkpoint pattern (never a path)."""
        if not CHECKPOINT_NAME.match(name) or Path(name).name != name:
            raise UserError(
                f"{self.checkpoints / LATEST} names {name!r}, which is not a checkpoint inside "
                f"{self.checkpoints}; refusing to read or delete it. Restore that file from the "
                "run's own checkpoint names (ckpt-<kimg>kimg...)."
            )
        return name

    def _index(self) -> dict[str, Any]:
        p = self.checkpoints / LATEST
        if not p.exists():
            return {}
        try:
            data = read_json(p)
        except (OSError, ValueError) as exc:
            raise file_error(p, exc, "checkpoint index") from exc
        if not isinstance(data, dict) or not isinstance(data.get("history", []), list):
            raise UserError(f"{p} is not a checkpoint index (a JSON object with a history list).")
        return data

    def sweep_temporaries(self) -> list[str]:
        """Remove what an interrupted checkpoint write left in ``checkpoints/``; returns names.

        Only dot-files of the temporary pattern are removed (a killed ``torch.save`` or TF
        checkpoint folder can be hundreds of MB); call it only while holding the run's lock.
        """
        removed = []
        if not self.checkpoints.is_dir():
            return removed
        for p in self.checkpoints.iterdir():
            if not TEMPORARY_NAME.match(p.name) or p.is_symlink():
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p.name)
        return removed

    # ------------------------------------------------------------------ lock
    def lock(self):
        """Hold the run's advisory lock (one trainer per run directory)."""
        return folder_lock(self.path)

    # ---------------------------------------------------------------- status
    def set_status(self, state: str, **extra: Any) -> None:
        atomic_write_json(
            self.status_path,
            {
                "state": state,
                "time": time.time(),
                "pid": os.getpid(),
                "host": socket.gethostname(),
                **extra,
            },
        )

    def status(self) -> dict[str, Any]:
        if not self.status_path.exists():
            return {"state": "missing"}
        try:
            data = read_json(self.status_path)
        except (OSError, ValueError):
            return {"state": "unreadable"}
        return data if isinstance(data, dict) else {"state": "unreadable"}


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Hold ``folder/.lock`` exclusively for the block (``flock``: released on exit and by the
    kernel if the process dies, so a killed holder never leaves a stale lock). The file names
    the holder (pid, host, time, command) so the error a second process gets says who it is."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file, not a folder; choose another path.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fh = open(folder / LOCK, "a+", encoding="utf-8")  # noqa: SIM115 (held for the block)
    except OSError as exc:
        raise UserError(
            f"cannot use {folder}: {exc.strerror or exc}; choose a writable folder."
        ) from exc
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UserError(
                f"{folder} is in use by {describe_holder(folder / LOCK)}; wait for it to finish "
                "or stop that process first."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(holder_record()) + "\n")
        fh.flush()
        yield
    finally:
        fh.close()


def holder_record() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(sys.argv)[:300],
    }


def describe_holder(lock_file: Path) -> str:
    """ "pid 123 on host h since <time> (<command>)" from a lock file, as well as it can."""
    try:
        info = json.loads(lock_file.read_text(encoding="utf-8").strip() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process"
    return (
        f"pid {info.get('pid')} on host {info.get('host')} since {info.get('since')} "
        f"({info.get('command', '?')})"
    )


def _plain(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
