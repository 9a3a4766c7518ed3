"""The command lines the harness runs, built in one place.

Every training, sample export and evaluation is its own process (torch and
tensorflow never share one), started from an argv list made here. Tests replace
:data:`COMMANDS` (or monkeypatch its methods) with fake commands, so the
harness's resume and failure logic is tested without training anything.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.profiles import PROGRESSIVE, ModelSpec, Profile

# Trainer / sampler modules per (kind, framework); the harness relies on their
# shared flags (gancore.train.cli.RUN_FLAGS / LOOP_FLAGS).
TRAIN_MODULES = {
    "dcgan": "vanilla_gan.train",
    "sndcgan": "vanilla_gan.train",
    "progan": {"torch": "progan_torch.train", "tf": "progan_tf.train"},
    "sn-progan": {"torch": "progan_torch.train", "tf": "progan_tf.train"},  # with an SN preset
}
SAMPLE_MODULES = {
    "dcgan": "vanilla_gan.sample",
    "sndcgan": "vanilla_gan.sample",
    "progan": {"torch": "progan_torch.sample", "tf": "progan_tf.sample"},
    "sn-progan": {"torch": "progan_torch.sample", "tf": "progan_tf.sample"},
}

# Printed once per subprocess: hardware facts plus the GPU as torch sees it. Runs in
# its own process so the harness itself never imports a framework.
HARDWARE_SNIPPET = """
import json
from gancore.hardware import describe
d = describe()
try:
    import torch
    d["cuda_available"] = bool(torch.cuda.is_available())
    d["cuda_version"] = torch.version.cuda
    if torch.cuda.is_available():
        d["gpu"] = torch.cuda.get_device_name(0)
        d["gpu_count"] = torch.cuda.device_count()
        d["gpu_memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
except Exception as exc:  # torch missing or broken: record why, keep the CPU facts
    d["torch_error"] = repr(exc)
print(json.dumps(d))
"""


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid: a model, a framework and a seed, with its folder."""

    profile: str
    model: ModelSpec
    framework: str
    seed: int
    run_dir: Path

    @property
    def name(self) -> str:
        return self.run_dir.name


def module_for(table: dict[str, Any], kind: str, framework: str) -> str:
    entry = table[kind]
    return entry[framework] if isinstance(entry, dict) else entry


def flags(args: dict[str, Any]) -> list[str]:
    """``{snake_case: value}`` -> ``--snake-case value`` in the gancore.config CLI syntax."""
    out: list[str] = []
    for key, value in args.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, list | tuple):
            out += [flag, ",".join(str(v) for v in value)]
        elif isinstance(value, dict):
            out += [flag, ",".join(f"{k}:{v}" for k, v in value.items())]
        else:
            out += [flag, str(value)]
    return out


class Commands:
    """argv builders; one method per process kind the harness starts."""

    python = sys.executable

    def train(self, run: RunSpec, profile: Profile, resume: bool) -> list[str]:
        m = run.model
        argv = [self.python, "-m", module_for(TRAIN_MODULES, m.kind, run.framework)]
        if resume:
            # The trainers rebuild the run from its config.json and refuse flags that would
            # change it (and ProGAN refuses --preset); pass only what may change on resume.
            argv += [
                "--resume",
                str(run.run_dir),
                *profile.budget.trainer_flags(),
                "--device",
                profile.device,
                "--snapshot-kimg",
                _num(profile.snapshot_kimg),
            ]
            return argv + (["--keep-checkpoints", "0"] if profile.eval_kimg else [])
        if m.kind in PROGRESSIVE:
            argv += ["--max-res", str(m.res)]
            if m.preset:
                argv += ["--preset", m.preset]
        else:
            argv += [
                "--model",
                m.kind,
                "--framework",
                run.framework,
                "--res",
                str(m.res),
                "--batch",
                str(m.batch),
            ]
        argv += [
            "--dataset",
            profile.dataset,
            *profile.budget.trainer_flags(),
            "--seed",
            str(run.seed),
            "--device",
            profile.device,
            "--snapshot-kimg",
            _num(profile.snapshot_kimg),
        ]
        if profile.data_root:
            argv += ["--data-root", str(profile.data_root)]
        if profile.eval_kimg:
            # Intermediate evaluation points need their checkpoints: keep them all.
            argv += ["--keep-checkpoints", "0"]
        return argv + flags(m.args) + ["--out", str(run.run_dir)]

    def sample(
        self, run: RunSpec, checkpoint: Path | None, n: int, out: Path, profile: Profile
    ) -> list[str]:
        argv = [
            self.python,
            "-m",
            module_for(SAMPLE_MODULES, run.model.kind, run.framework),
            "--run",
            str(run.run_dir),
            "--n",
            str(n),
            "--seed",
            str(run.seed),
            "--out",
            str(out),
        ]
        if checkpoint is not None:
            argv += ["--checkpoint", str(checkpoint)]
        if profile.evaluation.batch:
            argv += ["--batch", str(profile.evaluation.batch)]
        return argv

    def evaluate(self, samples: Path, out: Path, profile: Profile) -> list[str]:
        # --keep-going: a metric that cannot run (no weights, wrong data set) is recorded
        # under "skipped" with its reason instead of failing the whole evaluation.
        argv = [
            self.python,
            "-m",
            "benchmarks.evaluate",
            "--samples",
            str(samples),
            "--dataset",
            profile.dataset,
            "--metrics",
            ",".join(profile.evaluation.metrics),
            "--out",
            str(out),
            "--keep-going",
            "--quiet",
        ]
        if profile.data_root:
            argv += ["--data-root", str(profile.data_root)]
        return argv + flags(profile.evaluation.args)

    def floor(self, res: int, n: int, out: Path, profile: Profile) -> list[str]:
        """Real-vs-real floor: real images scored exactly like samples.

        With the default ``floor_split = "train"`` the evaluate CLI cuts the training set's
        fixed shuffled order into two disjoint halves (one plays the generator), which
        exists for every data set; "test" scores the test split against train instead.
        """
        argv = [
            self.python,
            "-m",
            "benchmarks.evaluate",
            "--real-vs-real",
            "--split-a",
            "train",
            "--split-b",
            profile.evaluation.floor_split,
            "--dataset",
            profile.dataset,
            "--res",
            str(res),
            "--max-samples",
            str(n),
            "--metrics",
            ",".join(profile.evaluation.metrics),
            "--out",
            str(out),
            "--keep-going",
            "--quiet",
        ]
        if profile.data_root:
            argv += ["--data-root", str(profile.data_root)]
        return argv + flags(profile.evaluation.args)

    def hardware(self) -> list[str]:
        return [self.python, "-c", HARDWARE_SNIPPET]


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


COMMANDS = Commands()
