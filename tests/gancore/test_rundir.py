"""The run directory keeps what it holds: nothing read from it points outside it, nothing good
is pruned or deleted implicitly, one trainer per folder, killed writes are swept."""

from __future__ import annotations

import json
import multiprocessing as mp
import os

import pytest

from gancore.errors import UserError
from gancore.rundir import RunDir
from gancore.train.schema import CheckpointMeta


def _run_with_checkpoints(tmp_path, n: int = 3, keep: int = 0) -> RunDir:
    run = RunDir(tmp_path / "run")
    run.create({})
    for k in range(n):
        p = run.checkpoint_path(k, ".pt")
        p.write_bytes(b"x")
        run.commit_checkpoint(p, CheckpointMeta(k * 1000, k, 0.0, 0), keep=keep)
    return run


def _edit_index(run: RunDir, name: str) -> None:
    index = json.loads((run.checkpoints / "latest.json").read_text())
    index["history"].insert(0, {**index["history"][0], "file": name})
    index["latest"] = {**index["latest"], "file": name}
    (run.checkpoints / "latest.json").write_text(json.dumps(index))


@pytest.mark.parametrize(
    "name", ["/tmp/victim", "../../victim", "../config.json", "sub/ckpt-000001.000kimg.pt"]
)
def test_a_crafted_index_can_neither_load_nor_delete_outside_the_folder(tmp_path, name):
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    run = _run_with_checkpoints(tmp_path)
    _edit_index(run, name if not name.startswith("/tmp") else str(victim))
    with pytest.raises(UserError, match="refusing to read or delete"):
        run.latest_checkpoint()
    p = run.checkpoint_path(9, ".pt")
    p.write_bytes(b"x")
    with pytest.raises(UserError, match="refusing"):
        run.commit_checkpoint(p, CheckpointMeta(9000, 9, 0.0, 0), keep=1)  # would prune it
    assert victim.read_text() == "keep me" and run.config_path.exists()


def test_pruning_keeps_the_newest_and_deletes_only_checkpoints(tmp_path):
    run = _run_with_checkpoints(tmp_path, n=4, keep=2)
    assert sorted(p.name for p in run.checkpoints.iterdir()) == [
        "ckpt-000002.000kimg.pt",
        "ckpt-000003.000kimg.pt",
        "latest.json",
    ]


@pytest.mark.parametrize(
    "content", ["", "{not json", "[1, 2]", '{"history": 5}', '{"history": [{"kimg": 1}]}']
)
def test_a_damaged_index_is_a_clear_error(tmp_path, content):
    run = _run_with_checkpoints(tmp_path)
    (run.checkpoints / "latest.json").write_text(content)
    with pytest.raises(UserError) as info:
        run.latest_checkpoint()
    assert "latest.json" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("content", ["", "{oops", "[]", "3"])
def test_a_damaged_config_is_a_clear_error(tmp_path, content):
    run = RunDir(tmp_path / "run")
    run.create({})
    run.config_path.write_text(content)
    with pytest.raises(UserError) as info:
        run.read_config()
    assert "config" in str(info.value) and "\n" not in str(info.value)


def test_out_that_is_a_file_or_unwritable_is_a_clear_error(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(UserError, match="is a file"):
        RunDir(f).create({})
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        with pytest.raises(UserError, match="writable"):
            RunDir(locked / "run").create({})
    finally:
        locked.chmod(0o700)


def test_temporaries_of_a_killed_write_are_swept_and_nothing_else(tmp_path):
    run = _run_with_checkpoints(tmp_path)
    (run.checkpoints / ".ckpt-000005.000kimg.pt.abc123.pt.tmp").write_bytes(b"half")
    d = run.checkpoints / ".ckpt-000006.000kimg.xyz.tmp"
    d.mkdir()
    (d / "ckpt.data-00000-of-00001").write_bytes(b"half")
    (run.checkpoints / "notes.txt").write_text("mine")
    removed = run.sweep_temporaries()
    assert sorted(removed) == [
        ".ckpt-000005.000kimg.pt.abc123.pt.tmp",
        ".ckpt-000006.000kimg.xyz.tmp",
    ]
    names = sorted(p.name for p in run.checkpoints.iterdir())
    assert "notes.txt" in names and len([n for n in names if n.startswith("ckpt-")]) == 3


def _hold(path, ready, release):
    with RunDir(path).lock():
        ready.set()
        release.wait(30)


def test_one_process_per_run_directory_and_the_error_names_the_holder(tmp_path):
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(tmp_path / "run"), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(UserError, match=rf"in use by pid {holder.pid} on host"):
            with RunDir(tmp_path / "run").lock():
                pass
    finally:
        release.set()
        holder.join(30)
    with RunDir(tmp_path / "run").lock():  # released when the holder ended
        pass
