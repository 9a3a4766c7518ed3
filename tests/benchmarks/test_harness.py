"""Harness: profile loading and validation, argv contracts, resume and failure handling.

The model CLIs are replaced by fake scripts (tests/benchmarks/harness_fakes.py), so
these tests check the harness's own logic in seconds without training anything.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from benchmarks.commands import COMMANDS, RunSpec
from benchmarks.harness import main as harness_main
from benchmarks.profiles import list_profiles, load_profile, parse_profile
from benchmarks.progress import Progress, fmt_duration
from benchmarks.runner import Runner, plan
from gancore import UserError
from tests.benchmarks.harness_fakes import FakeCommands, calls, read, tiny_profile


# ------------------------------------------------------------------ profiles
def test_bundled_profiles_load_and_share_one_budget():
    names = list_profiles()
    for required in ("default", "smoke", "stacked-mnist", "cifar10-cars", "celeba", "celebahq"):
        assert required in names
    for name in names:
        prof = load_profile(name)
        assert prof.models and prof.seeds and prof.evaluation.metrics
    default = load_profile("default")
    assert default.dataset == "stacked-digits"
    # the 2x2 design in PyTorch; the two paper baselines also in TensorFlow
    assert {(m.kind, fw) for m in default.models for fw in m.frameworks} == {
        *((k, "torch") for k in ("dcgan", "sndcgan", "progan", "sn-progan")),
        ("dcgan", "tf"),
        ("progan", "tf"),
    }
    assert default.budget.axis == "compute" and default.evaluation.num_samples >= 10000
    # every non-paper setting of a model entry carries its reason into the report
    assert all(m.why for m in default.models)
    celeba = load_profile("celeba")
    assert sorted(m.res for m in celeba.models if m.kind == "progan") == [64, 128]


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"colour": 1}, "unknown key"),
        ({"resolution": 48}, "power of two"),
        ({"kimg": -1}, "kimg must be a positive number"),
        ({"eval_kimg": [1.5]}, "not a multiple of snapshot_kimg"),
        ({"eval_kimg": [2]}, "strictly between"),
        ({"seeds": 0}, "seeds must be at least 1"),
        ({"frameworks": ["jax"]}, "frameworks"),
        ({"models": {"dcgan": {"args": {"kimg": 5}}}}, "may not set"),
        ({"models": {"biggan": {}}}, "kind 'biggan'"),
        ({"models": {"progan": {"batch": 8}}}, "batch sizes from its preset"),
        ({"models": {"dcgan": {"preset": "x"}}}, "preset applies to ProGAN only"),
        ({"models": {"dcgan": {"why": 3}}}, "why must be a string"),
        ({"models": {"progan": {"preset": "celeba-hd"}}}, "unknown ProGAN preset 'celeba-hd'"),
        ({"evaluation": {"metrics": [], "num_samples": 10}}, "non-empty list"),
    ],
)
def test_profile_validation_names_the_problem(patch, message):
    raw = {
        "dataset": "stacked-digits",
        "resolution": 32,
        "kimg": 2,
        "snapshot_kimg": 1,
        "evaluation": {"metrics": ["swd"], "num_samples": 10},
        "models": {"dcgan": {}},
    }
    raw.update(patch)
    with pytest.raises(ValueError, match=message):
        parse_profile(raw, name="bad")


def test_profile_file_errors_are_user_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("dataset = [unclosed\n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_profile(str(bad))
    bad.write_text('dataset = "x"\nresolution = 32\nkimg = 1\n')
    with pytest.raises(UserError, match=r"bad.toml: missing required key 'models'"):
        load_profile(str(bad))
    with pytest.raises(UserError, match="unknown profile 'nope'.*default"):
        load_profile("nope")
    assert load_profile("default").with_overrides(seeds=3).seeds == (0, 1, 2)


# ------------------------------------------------------------- argv contract
def test_train_and_sample_argv_follow_the_model_cli_contract(tmp_path):
    prof = tiny_profile(data_root="/data")
    runs = {r.name: r for r in plan(prof, tmp_path)}
    assert sorted(runs) == ["dcgan-tf-s0", "dcgan-torch-s0", "progan-tf-s0", "progan-torch-s0"]
    argv = COMMANDS.train(runs["dcgan-tf-s0"], prof, resume=False)
    assert argv[1:3] == ["-m", "vanilla_gan.train"]
    text = " ".join(argv)
    for part in (
        "--model dcgan",
        "--framework tf",
        "--res 16",
        "--batch 4",
        "--kimg 2",
        "--seed 0",
        "--data-root /data",
        "--keep-checkpoints 0",
        "--snapshot-kimg 1",
        f"--out {tmp_path / 'dcgan-tf-s0'}",
    ):
        assert part in text
    argv = COMMANDS.train(runs["progan-tf-s0"], prof, resume=False)
    assert argv[2] == "progan_tf.train"
    assert argv[argv.index("--max-res") + 1] == "16" and argv[argv.index("--preset") + 1] == "quick"
    # on resume only flags the trainers accept with --resume (ProGAN refuses --preset)
    argv = COMMANDS.train(runs["progan-tf-s0"], prof, resume=True)
    assert argv[argv.index("--resume") + 1] == str(tmp_path / "progan-tf-s0")
    assert "--out" not in argv and "--preset" not in argv and "--max-res" not in argv
    assert argv[argv.index("--kimg") + 1] == "2"
    s = COMMANDS.sample(runs["progan-torch-s0"], Path("c.pt"), 8, Path("o.npz"), prof)
    assert s[2] == "progan_torch.sample" and s[s.index("--checkpoint") + 1] == "c.pt"


# ---------------------------------------------------------- runner behaviour
def _runner(prof, tmp_path, **kw):
    overwrite = kw.pop("overwrite", False)
    return Runner(
        prof,
        tmp_path / "runs",
        commands=FakeCommands(tmp_path, **kw),
        progress_stream=io.StringIO(),
        poll_s=0.02,
        overwrite=overwrite,
    )


def test_failed_run_is_a_row_and_the_grid_goes_on_then_finished_runs_are_skipped(tmp_path):
    prof = tiny_profile(
        frameworks=["torch"],
        models={"dcgan": {"batch": 4, "args": {"fail": True}}, "sndcgan": {"batch": 4}},
    )
    records = _runner(prof, tmp_path).run()
    by_name = {f"{r['model']}-{r['framework']}-s{r['seed']}": r for r in records}
    bad, good = by_name["dcgan-torch-s0"], by_name["sndcgan-torch-s0"]
    assert bad["state"] == "failed" and bad["failed_step"] == "train"
    assert "fake trainer exploded" in bad["error"]
    runs = tmp_path / "runs"
    assert "exploded" in (runs / "dcgan-torch-s0" / "logs" / "train.err").read_text()
    assert read(runs / "dcgan-torch-s0" / "harness.json")["state"] == "failed"
    assert good["state"] == "finished"
    assert (runs / "sndcgan-torch-s0" / "eval" / "final" / "metrics.json").exists()
    assert (runs / "sndcgan-torch-s0" / "eval" / "kimg-00001.000" / "metrics.json").exists()
    # intermediate samples are dropped after scoring, the final ones kept
    assert not (runs / "sndcgan-torch-s0" / "eval" / "kimg-00001.000" / "samples.npz").exists()
    assert read(runs / "_floor" / "res-16" / "metrics.json")["swd_16k_avg"] == 0.5
    assert read(runs / "hardware.json")["cpu"] == "FakeCPU"
    assert [r["name"] for r in read(runs / "plan.json")["runs"]] == [
        "dcgan-torch-s0",
        "sndcgan-torch-s0",
    ]
    assert calls(runs) == ["dcgan-torch-s0 fresh", "sndcgan-torch-s0 fresh"]

    # second invocation: the finished run is skipped; the failed one stopped before its first
    # checkpoint, so it is not touched (nothing deleted) and the row says how to restart it
    (runs / "dcgan-torch-s0" / "notes.txt").write_text("mine")
    records = _runner(prof, tmp_path).run()
    assert calls(runs)[2:] == []
    bad = next(r for r in records if r["model"] == "dcgan")
    assert bad["state"] == "failed" and "--overwrite" in bad["error"]
    assert (runs / "dcgan-torch-s0" / "notes.txt").read_text() == "mine"
    # third, with --overwrite: retried in place (the trainer's own --overwrite)
    records = _runner(prof, tmp_path, overwrite=True).run()
    assert calls(runs)[2:] == ["dcgan-torch-s0 fresh"]
    assert {r["model"]: r["state"] for r in records} == {"dcgan": "failed", "sndcgan": "finished"}
    assert (runs / "dcgan-torch-s0" / "notes.txt").read_text() == "mine"


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path):
    prof = tiny_profile(
        frameworks=["tf"], models={"progan": {"preset": "quick", "args": {"interrupt": True}}}
    )
    first = _runner(prof, tmp_path).run()
    assert first[0]["state"] == "failed"  # exit status 3, status.json still "running"
    run_dir = tmp_path / "runs" / "progan-tf-s0"
    assert read(run_dir / "status.json")["state"] == "running"
    second = _runner(prof, tmp_path).run()
    assert calls(tmp_path / "runs") == ["progan-tf-s0 fresh", "progan-tf-s0 resume"]
    assert second[0]["state"] == "finished"
    assert [a["resume"] for a in second[0]["attempts"]] == [False, True]
    assert read(run_dir / "checkpoints" / "latest.json")["latest"]["kimg"] == 2.0


def test_a_row_killed_by_a_signal_says_so(tmp_path):
    prof = tiny_profile(
        frameworks=["torch"], models={"dcgan": {"batch": 4, "args": {"suicide": True}}}
    )
    rec = _runner(prof, tmp_path).run()[0]
    assert rec["state"] == "failed" and rec["error"] == "killed by signal 9 (SIGKILL)"


def _hold_lock(path, ready, release):
    from gancore.rundir import folder_lock

    with folder_lock(path):
        ready.set()
        release.wait(30)


def test_one_harness_per_runs_directory(tmp_path):
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(tmp_path / "runs"), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        prof = tiny_profile(frameworks=["torch"], models={"dcgan": {"batch": 4}})
        with pytest.raises(UserError, match=f"in use by pid {holder.pid}"):
            _runner(prof, tmp_path).run()
    finally:
        release.set()
        holder.join(30)


# Ctrl-C as a terminal delivers it. A process started in the background by a non-interactive
# shell (`make test &` in a script) inherits SIGINT as ignored, and Python then installs no
# KeyboardInterrupt handler: the script restores it so the test does not depend on how the
# suite was started.
HARNESS_SCRIPT = """
import io, signal, sys
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, sys.argv[1])
from benchmarks.runner import HarnessInterrupted, Runner
from tests.benchmarks.harness_fakes import FakeCommands, tiny_profile
tmp = Path(sys.argv[2])
prof = tiny_profile(frameworks=["torch"], models={"dcgan": {"batch": 4, "args": {"sleep": True}}})
try:
    Runner(prof, tmp / "runs", commands=FakeCommands(tmp), progress_stream=io.StringIO(), poll_s=0.05).run()
except HarnessInterrupted as exc:
    print("INTERRUPTED", exc.step, exc.returncode)
    sys.exit(130)
"""


def _start_harness(tmp_path):
    import subprocess
    import sys
    import time

    from benchmarks.runner import _repo_root

    proc = subprocess.Popen(
        [sys.executable, "-c", HARNESS_SCRIPT, str(_repo_root()), str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pid_file = tmp_path / "runs" / "dcgan-torch-s0" / "pid"
    deadline = time.time() + 60
    while not pid_file.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert pid_file.exists(), proc.stderr.read() if proc.poll() is not None else "no trainer"
    time.sleep(0.3)
    return proc, int(pid_file.read_text())


def test_ctrl_c_on_the_harness_stops_the_trainer_gracefully_and_is_recorded(tmp_path):
    import signal

    proc, _ = _start_harness(tmp_path)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "INTERRUPTED train 130" in out and "Traceback" not in err
    run_dir = tmp_path / "runs" / "dcgan-torch-s0"
    assert (run_dir / "got-signal").read_text() == "SIGTERM"  # asked to checkpoint, not killed
    record = read(run_dir / "harness.json")
    assert record["state"] == "interrupted" and "interrupted by the user" in record["error"]


def test_a_killed_harness_leaves_no_trainer_behind(tmp_path):
    import os
    import signal
    import time

    proc, child = _start_harness(tmp_path)
    proc.kill()
    proc.wait(30)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        raise AssertionError("the trainer outlived its harness")
    assert (tmp_path / "runs" / "dcgan-torch-s0" / "got-signal").read_text() == "SIGTERM"


def test_finished_training_with_failed_evaluation_is_a_failed_row(tmp_path):
    prof = tiny_profile(frameworks=["torch"], models={"dcgan": {"batch": 4}})
    rec = _runner(prof, tmp_path, fail_evaluate=True).run()[0]
    assert rec["state"] == "failed" and rec["failed_step"] == "evaluate"
    assert "evaluator crashed" in rec["error"]
    # re-run with a working evaluator: no retraining, only the evaluation
    rec = _runner(prof, tmp_path).run()[0]
    assert rec["state"] == "finished"
    assert calls(tmp_path / "runs") == ["dcgan-torch-s0 fresh"]


def test_cli_dry_run_prints_every_command(tmp_path, capsys):
    assert (
        harness_main(
            ["run", "--profile", "smoke", "--dry-run", "--seeds", "2", "--runs-dir", str(tmp_path)]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.count("vanilla_gan.train") == 8 and out.count("progan_tf.train") == 2
    assert "benchmarks.evaluate" in out and not list(tmp_path.iterdir())


def test_runspec_name_matches_layout(tmp_path):
    prof = tiny_profile(seeds=2)
    names = [r.name for r in plan(prof, tmp_path)]
    assert "progan-tf-s1" in names and all(isinstance(r, RunSpec) for r in plan(prof, tmp_path))


def test_unknown_metric_name_is_rejected_with_the_list():
    raw = {
        "dataset": "stacked-digits",
        "resolution": 32,
        "kimg": 2,
        "evaluation": {"metrics": ["swd", "fidd"], "num_samples": 10},
        "models": {"dcgan": {}},
    }
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['fidd'\].*swd"):
        parse_profile(raw, name="bad")


def test_progress_eta_learns_from_finished_work():
    out = io.StringIO()
    p = Progress(total_runs=2, train_work=20.0, eval_points=4, stream=out, interval_s=0)
    assert p.eta() is None  # nothing measured yet: say so, do not guess
    p.train_finished(kimg_trained=10.0, seconds=100.0, planned=10.0)
    p.eval_finished(seconds=5.0)
    p.eval_finished(seconds=15.0)
    assert p.eta() == pytest.approx(10.0 * 10.0 + 2 * 10.0)
    p.start_run(2, "progan-tf-s0")
    p.set_phase("train")
    assert "[2/2 progan-tf-s0] train" in out.getvalue() and "ETA 2m00s" in out.getvalue()
    assert fmt_duration(3725) == "1h02m" and fmt_duration(None) == "?"


def test_progress_eta_under_a_compute_budget_counts_work_not_images():
    """Equal TFLOP, unequal cost per image: a cheap model's seconds per kimg must not set the
    ETA of an expensive one. Run 1: 200 kimg at 0.4 TFLOP/kimg in 600 s (7.5 s per TFLOP);
    run 2, still to go: 40 kimg at 2 TFLOP/kimg, the same 80 TFLOP, so 600 s more (seconds
    per kimg would say 40 x 3 s = 120 s)."""
    p = Progress(total_runs=2, train_work=160.0, eval_points=0, stream=io.StringIO())
    p.train_finished(kimg_trained=200.0, seconds=600.0, planned=200.0, work_per_kimg=0.4)
    assert p.eta() == pytest.approx(80.0 * 600.0 / 80.0)
    p.train_tick(kimg_done=30.0, kimg_total=40.0, start_kimg=10.0, work_per_kimg=2.0)
    assert p.eta() == pytest.approx((80.0 - 40.0) * 600.0 / 80.0)  # 20 kimg done = 40 TFLOP


def test_report_without_runs_and_only_matching_nothing_are_errors(tmp_path):
    with pytest.raises(UserError, match="nothing to report"):
        harness_main(["report", "--profile", "smoke", "--runs-dir", str(tmp_path / "none")])
    with pytest.raises(UserError, match="matches none"):
        harness_main(["run", "--profile", "smoke", "--only", "nope-*", "--runs-dir", str(tmp_path)])


def test_a_compute_budget_sizes_each_run_with_the_trainers_own_resolution(tmp_path):
    """budget = {tflop}: the trainers get --tflop, and the harness learns each run's length
    from benchmarks.budget (the model code counts its FLOPs per image), in one subprocess."""
    prof = tiny_profile(
        frameworks=["torch"],
        models={
            "dcgan": {"batch": 16, "args": {"width": 8}},
            "sndcgan": {"batch": 16, "args": {"width": 8}},
        },
        kimg=None,
        budget={"tflop": 0.05},
        eval_kimg=[],
    )
    from benchmarks.commands import COMMANDS

    runs = plan(prof, tmp_path / "runs")
    argvs = [COMMANDS.train(r, prof, resume=False) for r in runs]
    assert all("--tflop" in a and "--kimg" not in a for a in argvs)
    assert prof.budget.describe() == "equal training compute: 0.05 TFLOP per model"
    runner = Runner(prof, tmp_path / "runs", progress_stream=io.StringIO())
    planned, work_per_kimg = runner._sizes(runs)
    dcgan, sndcgan = (planned[r.name] for r in runs)
    # SN-DCGAN's standard CNN costs more per image: the same compute shows it fewer images
    assert dcgan > 2 * sndcgan > 0
    # the progress line's work is each run's TFLOP: the budget, a little over (whole steps)
    for r in runs:
        assert planned[r.name] * work_per_kimg[r.name] == pytest.approx(0.05, rel=0.01)


def _estimate_rows(out: str) -> dict[str, tuple[float, float, str]]:
    rows = {}
    for line in out.splitlines():
        parts = line.lstrip("# ").split()
        if len(parts) >= 4 and parts[0].endswith("-s0"):
            rows[parts[0]] = (float(parts[1]), float(parts[2]), " ".join(parts[3:]))
    return rows


@pytest.mark.parametrize("budget", ["budget = { tflop = 6 }", "budget = { kimg = 4 }"])
def test_dry_run_estimates_each_runs_compute_and_time(tmp_path, capsys, budget):
    prof = tmp_path / "p.toml"
    prof.write_text(
        f'dataset = "stacked-digits"\nresolution = 32\n{budget}\nframeworks = ["torch"]\n'
        'throughput_tflops = 0.1\nsnapshot_kimg = 1\n[evaluation]\nmetrics = ["modes"]\n'
        "num_samples = 100\n[models.dcgan]\nbatch = 64\n"
    )
    argv = ["run", "--profile", str(prof), "--dry-run", "--runs-dir", str(tmp_path / "r")]
    assert harness_main(argv) == 0
    out = capsys.readouterr().out
    kimg, tflop, when = _estimate_rows(out)["dcgan-torch-s0"]
    per_image = tflop / kimg  # TFLOP per kimg = GFLOP per image: DCGAN 64 wide at 32x32
    assert 0.3 < per_image < 0.5
    if "tflop" in budget:  # the smallest whole number of steps that reaches the budget
        assert 6.0 <= tflop < 6.0 + 64 * per_image / 1000 + 0.05
    else:
        assert kimg == 4.0
    assert when == f"{tflop / 0.1 / 60:.0f} min"
    assert "about" in out and "TFLOP/s" in out


def test_throughput_must_be_positive():
    raw = {
        "dataset": "stacked-digits",
        "resolution": 32,
        "kimg": 2,
        "throughput_tflops": 0,
        "evaluation": {"metrics": ["modes"], "num_samples": 10},
        "models": {"dcgan": {}},
    }
    with pytest.raises(ValueError, match="throughput_tflops must be a positive number"):
        parse_profile(raw, name="x")
