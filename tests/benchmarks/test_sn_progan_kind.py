"""The harness knows SN-ProGAN: ``[models.sn-progan]`` with an SN-ProGAN preset runs the ProGAN
CLIs (fake commands here: nothing is trained)."""

from __future__ import annotations

import io

import pytest

from benchmarks.commands import COMMANDS, SAMPLE_MODULES, TRAIN_MODULES
from benchmarks.harness import plan
from benchmarks.profiles import KIND_LABELS, parse_profile
from benchmarks.runner import Runner
from tests.benchmarks.harness_fakes import FakeCommands, calls, tiny_profile


def _raw(models: dict) -> dict:
    return {
        "dataset": "stacked-digits",
        "resolution": 32,
        "kimg": 2,
        "snapshot_kimg": 1,
        "evaluation": {"metrics": ["swd"], "num_samples": 10},
        "models": models,
    }


def test_sn_progan_entry_parses_with_its_label_and_preset():
    prof = parse_profile(_raw({"sn-progan": {"preset": "sn-progan-quick"}}), name="p")
    (m,) = prof.models
    assert (m.kind, m.label, m.preset, m.batch, m.res) == (
        "sn-progan",
        "SN-ProGAN",
        "sn-progan-quick",
        None,
        32,
    )
    assert KIND_LABELS["sn-progan"] == "SN-ProGAN"
    assert TRAIN_MODULES["sn-progan"] == TRAIN_MODULES["progan"]
    assert SAMPLE_MODULES["sn-progan"] == SAMPLE_MODULES["progan"]
    # a second SN-ProGAN row under another folder name
    prof = parse_profile(
        _raw({"sn-64": {"kind": "sn-progan", "preset": "sn-progan-faces-64", "res": 16}}), "p"
    )
    assert prof.models[0].kind == "sn-progan" and prof.models[0].res == 16


@pytest.mark.parametrize(
    "models, message",
    [
        ({"sn-progan": {}}, "needs an SN-ProGAN preset"),
        ({"sn-progan": {"preset": "quick"}}, "trains progan, not sn-progan.*sn-progan-quick"),
        ({"progan": {"preset": "sn-progan-quick"}}, 'trains sn-progan, not progan; set kind = "sn'),
        ({"sn-progan": {"preset": "sn-progan-quick", "batch": 8}}, "batch sizes from its preset"),
        ({"sn-progan": {"preset": "nope"}}, "unknown ProGAN preset 'nope'"),
    ],
)
def test_sn_progan_entry_validation(models, message):
    with pytest.raises(ValueError, match=message):
        parse_profile(_raw(models), name="bad")


def test_sn_progan_argv_and_a_fake_grid_run(tmp_path):
    prof = tiny_profile(
        frameworks=["torch", "tf"], models={"sn-progan": {"preset": "sn-progan-quick"}}
    )
    runs = {r.name: r for r in plan(prof, tmp_path)}
    assert sorted(runs) == ["sn-progan-tf-s0", "sn-progan-torch-s0"]
    argv = COMMANDS.train(runs["sn-progan-tf-s0"], prof, resume=False)
    assert argv[1:3] == ["-m", "progan_tf.train"]
    assert argv[argv.index("--preset") + 1] == "sn-progan-quick"
    assert argv[argv.index("--max-res") + 1] == "16"
    assert "--batch" not in argv and "--model" not in argv
    resume = COMMANDS.train(runs["sn-progan-torch-s0"], prof, resume=True)
    assert resume[2] == "progan_torch.train" and "--preset" not in resume
    s = COMMANDS.sample(runs["sn-progan-torch-s0"], None, 8, tmp_path / "o.npz", prof)
    assert s[2] == "progan_torch.sample"

    records = Runner(
        prof,
        tmp_path / "runs",
        commands=FakeCommands(tmp_path),
        progress_stream=io.StringIO(),
        poll_s=0.02,
    ).run()
    assert {(r["model"], r["framework"], r["state"]) for r in records} == {
        ("sn-progan", "torch", "finished"),
        ("sn-progan", "tf", "finished"),
    }
    assert sorted(calls(tmp_path / "runs")) == ["sn-progan-tf-s0 fresh", "sn-progan-torch-s0 fresh"]
