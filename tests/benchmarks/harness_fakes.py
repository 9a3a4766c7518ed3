"""Fakes for the harness and report tests: synthetic run directories and fake model CLIs.

Nothing here trains a model. ``write_run`` lays out a run directory exactly as the
trainers and the evaluate CLI do (config.json, log.jsonl, status.json, checkpoints/
latest.json, samples/*.png, eval/*/metrics.json); ``FakeCommands`` makes the harness
start tiny Python scripts instead of the real trainers.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from benchmarks.commands import Commands, RunSpec, flags
from benchmarks.profiles import Profile, parse_profile, profile_to_dict
from gancore.grid import save_grid
from gancore.io import atomic_write_json
from gancore.rundir import RunDir
from gancore.train.schema import CheckpointMeta, GridNames, RunInfo, TickRecord, run_config


def tiny_profile(
    name: str = "t",
    dataset: str = "stacked-digits",
    seeds: int = 1,
    models: dict | None = None,
    frameworks=("torch", "tf"),
    **top,
) -> Profile:
    raw = {
        "dataset": dataset,
        "resolution": 16,
        "kimg": 2,
        "seeds": seeds,
        "frameworks": list(frameworks),
        "snapshot_kimg": 1,
        "eval_kimg": [1],
        "evaluation": {"metrics": ["swd", "msssim"], "num_samples": 8},
        "models": models or {"dcgan": {"batch": 4}, "progan": {"preset": "quick"}},
        **top,
    }
    raw = {k: v for k, v in raw.items() if v is not None}  # kimg=None: use another budget
    return parse_profile(raw, name=name)


def grid_png(path: Path, res: int, value: int) -> None:
    save_grid(path, np.full((4, res, res, 3), value, dtype=np.uint8), upscale_to=0)


def write_run(
    run_dir: Path,
    kind: str,
    framework: str,
    seed: int,
    metrics: dict | None,
    kimg: float = 2.0,
    state: str = "finished",
    error: str | None = None,
    curve: dict[float, dict] | None = None,
    img_per_s: dict[int, float] | None = None,
    res: int = 16,
    tflop: float | None = None,
    warmup_s: float = 0.0,
    seconds_per_tick: float = 10.0,
) -> None:
    """A run directory as a trainer + the harness would leave it.

    ``kind``: dcgan, sndcgan, progan or sn-progan (the growing kinds log 4 -> 8 -> ``res``);
    ``tflop``: the compute budget the trainer sized the run from (``config.json``);
    ``warmup_s``: seconds of compile steps per tick, left out of ``img_per_s`` as the loop does.
    """
    rd = RunDir(run_dir)
    info = RunInfo(kind, framework, f"{kind}.train", 3, dataset="stacked-digits")
    rd.create(run_config(info, {"seed": seed, "kimg": kimg, "tflop": tflop}))
    img_per_s = img_per_s or {res: 100.0 + seed}
    resolutions = [4, 8, res] if kind in ("progan", "sn-progan") else [res]
    ticks = 8
    for i in range(1, ticks + 1):
        k = kimg * i / ticks
        r = resolutions[min(len(resolutions) - 1, (i - 1) * len(resolutions) // ticks)]
        rd.log(
            tick_record(
                kimg=k,
                res=r,
                phase="stabilize",
                loss_d=1.0 / i,
                loss_g=2.0 / i,
                img_per_s=img_per_s.get(r, 50.0),
                warmup_s=warmup_s,
                tick_s=seconds_per_tick,
                time_s=seconds_per_tick * i,
                peak_mem_mb=500.0 + i,
                model=kind,
                framework=framework,
            )
        )
        grid_png(run_dir / "samples" / GridNames.tick(k), r, 20 * i % 255)
        nxt = resolutions[min(len(resolutions) - 1, i * len(resolutions) // ticks)]
        if kind in ("progan", "sn-progan") and (
            i == ticks or nxt != r
        ):  # ProGAN's end-of-phase grids
            grid_png(
                run_dir / "samples" / f"phase-{2 * resolutions.index(r):02d}-stabilize-{r}.png",
                r,
                40 * i % 255,
            )
    for k in sorted({*(curve or {}), kimg}):
        p = rd.checkpoint_path(k, ".pt")
        p.write_bytes(b"x")
        rd.commit_checkpoint(p, CheckpointMeta(int(round(k * 1000)), 0, 0.0, 0), keep=0)
    grid_png(run_dir / "samples" / "final.png", res, 30 + 50 * seed)
    grid_png(run_dir / "samples" / GridNames.REALS, res, 200)
    rd.set_status(state, **({"error": error} if error else {}))
    harness = {
        "state": state,
        "error": error,
        "train_wall_s": 100.0 + seed,
        "failed_step": "train" if state == "failed" else None,
        "stderr_tail": "Traceback (most recent call last):\nRuntimeError: " + error
        if error
        else None,
        "hardware": {"cpu": "FakeCPU", "cpu_count": 2},
    }
    if metrics is not None:
        atomic_write_json(run_dir / "eval" / "final" / "metrics.json", metrics)
        atomic_write_json(run_dir / "eval" / "final" / "point.json", {"kimg": kimg})
    for k, m in (curve or {}).items():
        folder = run_dir / "eval" / f"kimg-{k:09.3f}"
        atomic_write_json(folder / "metrics.json", m)
        atomic_write_json(folder / "point.json", {"kimg": k})
    atomic_write_json(run_dir / "harness.json", harness)


def tick_record(**values) -> dict:
    """A log.jsonl line with every TickRecord key (defaults for what a test does not set)."""
    k = values["kimg"]
    base = dict(
        kimg=k,
        nimg=int(round(k * 1000)),
        step=0,
        res=16,
        level=2,
        phase="stabilize",
        alpha=1.0,
        batch=16,
        lr=None,
        loss_d=1.0,
        loss_g=1.0,
        d_real=None,
        d_fake=None,
        gp=None,
        grad_norm=None,
        img_per_s=100.0,
        warmup_s=0.0,
        tick_s=1.0,
        time_s=1.0,
        peak_mem_mb=1.0,
        skipped_steps=0,
        world=1,
        model="dcgan",
        framework="torch",
    )
    base.update(values)
    return TickRecord(**base).to_json()


def metrics_file(
    swd: float, msssim: float, real: float = 0.05, skipped: dict | None = None
) -> dict:
    """Shaped like the evaluate CLI's output (benchmarks/metrics/base.py docstring)."""
    return {
        "swd_16k_avg": swd,
        "swd_16k_16px": swd * 2,
        "msssim_10k_pairs": msssim,
        "msssim_real_10k_pairs": real,
        "protocol": {
            "swd": {"n": 16384, "split": "train", "seconds": 1.5},
            "msssim": {"pairs": 10000, "filter": "11x11 clipped", "seconds": 2.0},
        },
        "skipped": skipped or {},
    }


DESIGN_KINDS = ("dcgan", "sndcgan", "progan", "sn-progan")


def design_profile(
    name: str = "grid",
    seeds: int = 1,
    tflop: float | None = 28.0,
    frameworks=("torch", "tf"),
    kinds=DESIGN_KINDS,
    resolution: int = 32,
) -> Profile:
    """The 2x2 design (growing x spectral norm) under a compute budget (``tflop=None``: an
    images budget of 2 kimg). SN-ProGAN is added as a model entry directly, so the fakes do not
    depend on the profile loader knowing the kind."""
    budget = {"budget": {"tflop": tflop}, "kimg": None, "eval_kimg": None} if tflop else {}
    base = tiny_profile(
        name=name,
        seeds=seeds,
        models={"dcgan": {"batch": 4}, "sndcgan": {"batch": 4}, "progan": {"preset": "quick"}},
        frameworks=list(frameworks),
        resolution=resolution,
        **budget,
    )
    models = [m for m in base.models if m.kind in kinds]
    if "sn-progan" in kinds:
        progan = next(m for m in base.models if m.kind == "progan")
        models.append(
            dataclasses.replace(progan, name="sn-progan", kind="sn-progan", label="SN-ProGAN")
        )
    return dataclasses.replace(base, models=tuple(models))


def write_plan(runs_dir: Path, profile: Profile, kimg: dict[str, float]) -> None:
    """``plan.json`` as the harness writes it (budget, and each run's planned kimg)."""
    from benchmarks.runner import plan

    atomic_write_json(
        runs_dir / "plan.json",
        {
            "profile": profile_to_dict(profile),
            "budget": dataclasses.asdict(profile.budget),
            "runs": [
                {
                    "name": r.name,
                    "model": r.model.name,
                    "framework": r.framework,
                    "seed": r.seed,
                    "kimg": kimg.get(r.name),
                }
                for r in plan(profile, runs_dir)
            ],
        },
    )


def design_metrics(
    modes: float,
    fd: float,
    msssim: float,
    support: float | None = 5000.0,
    ndb: float = 5.0,
    real_msssim: float = 0.05,
) -> dict:
    """A metrics file as the evaluate CLI writes it for the default profile's metrics plus the
    digit-classifier distances (keys with N, protocols, a null birthday support when asked)."""
    return {
        "modes_covered_2k": modes,
        "kl_modes_2k": 6.9 - modes / 200,
        "fd_digits_2k": fd,
        "swd_2k_avg": fd / 2,
        "msssim_2k_pairs": msssim,
        "msssim_real_2k_pairs": real_msssim,
        "ndb_k20": ndb,
        "ndb_frac_k20": ndb / 20,
        "birthday_support_s100": support,
        "birthday_dup_pairs_s100": 0 if support is None else 3,
        "protocol": {
            "modes": {"n": 2000, "num_modes": 1000, "classifier_heldout_accuracy": 0.97},
            "fd_domain": {
                "n": 2000,
                "extractor": "digits",
                "weights_sha256_16": "0123456789abcdef",
                "classifier_heldout_accuracy": 0.97,
            },
            "msssim": {"pairs": 2000},
            "ndb": {"k": 20, "n": 2000},
            "birthday": {"s": 100, "batches": 10},
        },
        "skipped": {},
    }


# ------------------------------------------------------------------ fake CLIs
FAKE_TRAIN = r"""
import json, sys, time
from pathlib import Path
from gancore.rundir import RunDir
from gancore.train.schema import CheckpointMeta, GridNames, RunInfo, TickRecord, run_config
from gancore.grid import save_grid
import numpy as np
args = sys.argv[1:]
def opt(name, default=None):
    return args[args.index(name) + 1] if name in args else default
resume = opt("--resume")
run = RunDir(resume or opt("--out"))
kimg = float(opt("--kimg"))
calls = Path(run.path.parent / "calls.txt")
with open(calls, "a") as fh:
    fh.write(run.path.name + (" resume" if resume else " fresh") + "\n")
if resume:
    start = float(run.checkpoint_entries()[-1]["kimg"])
else:
    run.create(run_config(RunInfo("dcgan", "torch", "fake.train", 3), {"argv": args}),
               overwrite="--overwrite" in args)
    start = 0.0
run.set_status("running")
if "--sleep" in args:  # a long trainer: say who it is, then wait for a signal
    import os, signal
    def stop(signum, frame):
        (run.path / "got-signal").write_text(signal.Signals(signum).name)
        run.set_status("interrupted")
        sys.exit(130)
    signal.signal(signal.SIGTERM, stop)
    (run.path / "pid").write_text(str(os.getpid()))  # only once SIGTERM is handled
    time.sleep(120)
if "--suicide" in args:
    import os, signal
    os.kill(os.getpid(), signal.SIGKILL)
if "--fail" in args:
    print("fake trainer: about to fail", file=sys.stderr)
    raise RuntimeError("fake trainer exploded at 0.5 kimg")
k = start
while k < kimg - 1e-9:
    k = round(k + 1.0, 6)
    run.log({"kimg": k, "res": 16, "img_per_s": 123.0, "time_s": k * 2, "loss_d": 1.0, "loss_g": 1.0,
             "peak_mem_mb": 321.0})
    p = run.checkpoint_path(k, ".pt"); p.write_bytes(b"x")
    run.commit_checkpoint(p, CheckpointMeta(int(k * 1000), 0, 0.0, 0), keep=0)
    if "--interrupt" in args and not resume and k >= 1:
        sys.exit(3)  # like a kill: status stays "running"
save_grid(run.samples / "final.png", np.zeros((4, 16, 16, 3), np.uint8), upscale_to=0)
run.set_status("finished")
"""

FAKE_SAMPLE = r"""
import sys
import numpy as np
from gancore.samples import save_samples
args = sys.argv[1:]
n = int(args[args.index("--n") + 1])
save_samples(args[args.index("--out") + 1], np.zeros((n, 16, 16, 3), np.uint8), np.arange(n))
"""

FAKE_EVALUATE = r"""
import json, sys
args = sys.argv[1:]
out = args[args.index("--out") + 1]
real = "--real-vs-real" in args
json.dump({"swd_16k_avg": 0.5 if real else 7.0, "msssim_10k_pairs": 0.05,
           "protocol": {"swd": {"n": 8}}, "skipped": {"fid": "no InceptionV3 weights"}},
          open(out, "w"))
"""


class FakeCommands(Commands):
    """Runs the fake scripts above; ``fail_evaluate`` makes every evaluation crash."""

    def __init__(self, tmp: Path, fail_evaluate: bool = False) -> None:
        self.scripts = {}
        for name, code in (
            ("train", FAKE_TRAIN),
            ("sample", FAKE_SAMPLE),
            ("evaluate", FAKE_EVALUATE),
        ):
            path = tmp / f"fake_{name}.py"
            path.write_text(code)
            self.scripts[name] = str(path)
        self.fail_evaluate = fail_evaluate

    def train(self, run: RunSpec, profile: Profile, resume: bool) -> list[str]:
        argv = [sys.executable, self.scripts["train"], "--kimg", str(profile.kimg)]
        argv += flags(run.model.args)
        return argv + (["--resume", str(run.run_dir)] if resume else ["--out", str(run.run_dir)])

    def sample(self, run, checkpoint, n, out, profile):
        return [sys.executable, self.scripts["sample"], "--n", str(n), "--out", str(out)]

    def evaluate(self, samples, out, profile):
        if self.fail_evaluate:
            return [sys.executable, "-c", "import sys; sys.exit('evaluator crashed: no data')"]
        return [sys.executable, self.scripts["evaluate"], "--out", str(out)]

    def floor(self, res, n, out, profile):
        return [sys.executable, self.scripts["evaluate"], "--real-vs-real", "--out", str(out)]

    def hardware(self):
        return [
            sys.executable,
            "-c",
            "import json; print(json.dumps({'cpu': 'FakeCPU', 'cpu_count': 2}))",
        ]


def calls(runs_dir: Path) -> list[str]:
    p = runs_dir / "calls.txt"
    return p.read_text().split("\n")[:-1] if p.exists() else []


def read(path: Path) -> dict:
    return json.loads(Path(path).read_text())
