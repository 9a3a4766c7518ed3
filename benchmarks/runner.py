"""Run a profile's grid: train, export samples, evaluate; resumable and failure-tolerant.

Layout (``runs/<profile>/``)::

    plan.json                         the resolved profile and the expected run names
    hardware.json                     the machine the last invocation ran on
    _floor/res-<R>/metrics.json       real-vs-real floor, scored once per resolution
    <model>-<framework>-s<seed>/      a trainer's run directory (gancore.rundir.RunDir) plus
        harness.json                  the harness's record: state, error, wall-clock, argv, hardware
        logs/<step>.out|.err          each subprocess's stdout / stderr
        eval/kimg-<k>/metrics.json    intermediate evaluation points (point.json: which checkpoint)
        eval/final/metrics.json       the final evaluation (samples.npz kept beside it)

Re-running a profile skips runs whose trainer finished and whose evaluations all
exist, evaluates finished runs that lack metrics and resumes interrupted runs with
``--resume RUN_DIR`` from their newest readable checkpoint. Nothing is deleted implicitly:
a run stopped before its first checkpoint is a failed row that says how to start it again
(``--overwrite``). A failing step never stops the grid: the run is recorded as failed with the
reason (the trainer's own one-line error, or the signal that killed it), and the next run
starts.

One harness per runs directory (``runs/<profile>/.lock``). Every child process runs in its own
session and is told to terminate when the harness dies (Linux ``PR_SET_PDEATHSIG``), so a
killed harness leaves no trainer behind; Ctrl-C asks the running trainer to checkpoint and
stop (SIGTERM), waits for it, records the interruption and exits with status 130.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.commands import COMMANDS, Commands, RunSpec
from benchmarks.profiles import Profile, profile_to_dict
from benchmarks.progress import Progress
from gancore.errors import UserError
from gancore.io import atomic_write_json, read_json
from gancore.rundir import RunDir, folder_lock

HARNESS_FILE = "harness.json"
STDERR_TAIL_LINES = 30


def plan(profile: Profile, runs_dir: Path) -> list[RunSpec]:
    """Every (model, framework, seed) cell, in report order."""
    return [
        RunSpec(profile.name, m, fw, seed, runs_dir / f"{m.name}-{fw}-s{seed}")
        for m in profile.models
        for fw in m.frameworks
        for seed in profile.seeds
    ]


def eval_points(profile: Profile) -> list[tuple[str, float | None]]:
    """(folder name, kimg) of each evaluation; ``None`` kimg is the final checkpoint."""
    return [(f"kimg-{k:09.3f}", k) for k in profile.eval_kimg] + [("final", None)]


def read_harness(run_dir: Path) -> dict[str, Any]:
    p = run_dir / HARNESS_FILE
    try:
        return read_json(p) if p.exists() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    if not path.exists():
        return ""
    # Progress bars end their updates with "\r", not newlines: split on both.
    text = path.read_text(encoding="utf-8", errors="replace").replace("\r", "\n").rstrip()
    text = [line for line in text.splitlines() if line.strip()]
    return "\n".join(text[-lines:])


class HarnessInterrupted(Exception):
    """Ctrl-C during a step; the child was stopped (gracefully when it could)."""

    def __init__(self, step: str, returncode: int | None) -> None:
        super().__init__(step)
        self.step, self.returncode = step, returncode


def describe_exit(rc: int) -> str:
    """``killed by signal 9 (SIGKILL)`` for a negative return code, else ``exit status N``."""
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = "unknown"
        return f"killed by signal {-rc} ({name})"
    return f"exit status {rc}"


def _die_with_parent() -> None:  # runs in the child, between fork and exec
    """Ask Linux to send SIGTERM to this child when the harness dies (even by SIGKILL)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the run lock still stops a second trainer
        pass


def last_error_line(stderr_tail: str) -> str:
    """The most telling line of a traceback: its last non-empty line."""
    for line in reversed(stderr_tail.splitlines()):
        if line.strip():
            return line.strip()
    return ""


class Runner:
    """Executes a plan; ``commands`` builds the argv lists (tests pass fakes)."""

    def __init__(
        self,
        profile: Profile,
        runs_dir: Path,
        commands: Commands = COMMANDS,
        progress_stream: Any = None,
        poll_s: float = 1.0,
        overwrite: bool = False,
    ) -> None:
        self.overwrite = overwrite  # restart runs that stopped before their first checkpoint
        self.profile = profile
        self.runs_dir = Path(runs_dir)
        self.commands = commands
        self.poll_s = poll_s
        self.progress_stream = progress_stream
        self.hardware: dict[str, Any] = {}

    # ------------------------------------------------------------------ public
    def run(self, only: Callable[[RunSpec], bool] | None = None) -> list[dict[str, Any]]:
        with folder_lock(self.runs_dir):
            return self._run_all(only)

    def _run_all(self, only: Callable[[RunSpec], bool] | None) -> list[dict[str, Any]]:
        grid = plan(self.profile, self.runs_dir)
        runs = [r for r in grid if only is None or only(r)]
        self.planned, self.work_per_kimg = self._sizes(grid)
        # The whole grid, not only the --only subset: the report shows every expected row.
        self._write_plan(grid)
        self.hardware = self._query_hardware()
        atomic_write_json(self.runs_dir / "hardware.json", self.hardware)
        todo_work = sum(
            (self.planned[r.name] - self._trained_kimg(r)) * self.work_per_kimg[r.name]
            for r in runs
            if RunDir(r.run_dir).status().get("state") != "finished"
        )
        n_evals = sum(
            1
            for r in runs
            for p in eval_points(self.profile)
            if not (r.run_dir / "eval" / p[0] / "metrics.json").exists()
        )
        self.progress = Progress(len(runs), todo_work, n_evals, stream=self.progress_stream)
        try:
            if self.profile.evaluation.floor:
                self._floors(runs)
            return [self._run_one(i + 1, r) for i, r in enumerate(runs)]
        finally:
            self.progress.close()

    # ---------------------------------------------------------------- one run
    def _run_one(self, index: int, run: RunSpec) -> dict[str, Any]:
        self.progress.start_run(index, run.name)
        record = read_harness(run.run_dir)
        record.update(
            profile=self.profile.name,
            model=run.model.name,
            kind=run.model.kind,
            label=run.model.label,
            framework=run.framework,
            seed=run.seed,
            res=run.model.res,
            kimg=self.planned[run.name],
            budget=self.profile.budget.describe(),
            dataset=self.profile.dataset,
            hardware=self.hardware,
        )
        try:
            return self._train_and_evaluate(run, record)
        except HarnessInterrupted as exc:
            record.update(
                state="interrupted",
                failed_step=exc.step,
                error=f"interrupted by the user during {exc.step} ({describe_exit(exc.returncode or 0)})",
            )
            self._save(run, record)
            raise

    def _train_and_evaluate(self, run: RunSpec, record: dict[str, Any]) -> dict[str, Any]:
        status = RunDir(run.run_dir).status().get("state")
        if status == "finished" and self._evals_complete(run):
            self.progress.message(f"{run.name}: finished earlier, skipped")
            record["state"] = "finished"
            return record
        if status != "finished":
            ok = self._train(run, record)
            if not ok:
                self.progress.message(f"{run.name}: FAILED in training: {record.get('error')}")
                return record
        self._evaluate(run, record)
        self.progress.message(
            f"{run.name}: {record['state']}"
            + (f" ({record['error']})" if record.get("error") else "")
        )
        return record

    def _train(self, run: RunSpec, record: dict[str, Any]) -> bool:
        rd = RunDir(run.run_dir)
        started = rd.config_path.exists()
        resume = started and bool(rd.checkpoint_entries())
        if started and not resume and not self.overwrite:
            record.update(
                state="failed",
                failed_step="train",
                error=(
                    f"{run.run_dir} stopped before its first checkpoint; nothing was deleted. "
                    "Run the harness again with --overwrite to start such runs over (their log "
                    "and grids are replaced), or delete the folder."
                ),
                stderr_tail=None,
            )
            self._save(run, record)
            return False
        start_kimg = self._trained_kimg(run) if resume else 0.0
        argv = self.commands.train(run, self.profile, resume=resume)
        if started and not resume:
            argv.append("--overwrite")
        self.progress.set_phase("resume" if resume else "train", f"{start_kimg:.1f} kimg")
        t0 = time.time()
        rc, err_tail = self._exec(
            argv,
            run.run_dir / "logs",
            "train",
            monitor=lambda: self.progress.train_tick(
                _logged_kimg(run.run_dir, start_kimg),
                self.planned[run.name],
                start_kimg,
                self.work_per_kimg[run.name],
            ),
        )
        seconds = time.time() - t0
        self.progress.train_finished(
            max(0.0, self._trained_kimg(run) - start_kimg),
            seconds,
            self.planned[run.name] - start_kimg,
            self.work_per_kimg[run.name],
        )
        attempts = record.setdefault("attempts", [])
        attempts.append(
            {
                "step": "train",
                "resume": resume,
                "argv": argv,
                "rc": rc,
                "wall_s": seconds,
                "started": t0,
            }
        )
        record["train_wall_s"] = sum(a["wall_s"] for a in attempts if a["step"] == "train")
        status = rd.status()
        if rc == 0 and status.get("state") == "finished":
            record.update(state="trained", error=None, stderr_tail=None, failed_step=None)
            self._save(run, record)
            return True
        if rc < 0:  # a signal: the stderr tail would only be the last progress bar line
            reason = describe_exit(rc)
        else:
            reason = status.get("error") or last_error_line(err_tail) or describe_exit(rc)
        if rc == 0:
            reason = f"trainer exited 0 but status.json says {status.get('state')!r}: {reason}"
        record.update(state="failed", failed_step="train", error=str(reason), stderr_tail=err_tail)
        self._save(run, record)
        return False

    def _evaluate(self, run: RunSpec, record: dict[str, Any]) -> None:
        evals = record.setdefault("evals", {})
        errors = []
        for folder, kimg in eval_points(self.profile):
            out_dir = run.run_dir / "eval" / folder
            if (out_dir / "metrics.json").exists():
                continue
            self.progress.set_phase("evaluate", f"{folder}")
            t0 = time.time()
            info = self._evaluate_point(run, out_dir, folder, kimg)
            info["wall_s"] = time.time() - t0
            self.progress.eval_finished(info["wall_s"])
            evals[folder] = info
            if info.get("error"):
                errors.append(f"{folder}: {info['error']}")
        final_ok = (run.run_dir / "eval" / "final" / "metrics.json").exists()
        record["eval_wall_s"] = sum(e.get("wall_s", 0.0) for e in evals.values())
        if final_ok:
            record.update(
                state="finished", failed_step=None, error=None, eval_errors=errors or None
            )
        else:
            final = evals.get("final", {})
            record.update(
                state="failed",
                failed_step="evaluate",
                error=final.get("error", "final evaluation missing"),
                stderr_tail=final.get("stderr_tail"),
                eval_errors=errors or None,
            )
        self._save(run, record)

    def _evaluate_point(
        self, run: RunSpec, out_dir: Path, folder: str, kimg: float | None
    ) -> dict[str, Any]:
        ev = self.profile.evaluation
        checkpoint, actual_kimg = None, self.planned[run.name]
        if kimg is not None:
            entry = _checkpoint_at(RunDir(run.run_dir), kimg)
            if entry is None:
                return {
                    "error": f"no checkpoint at or after {kimg:g} kimg in checkpoints/latest.json"
                }
            checkpoint = entry["path"]
            actual_kimg = float(entry["kimg"])
        else:
            entries = RunDir(run.run_dir).checkpoint_entries()
            actual_kimg = float(entries[-1]["kimg"]) if entries else self.planned[run.name]
        n = ev.num_samples
        out_dir.mkdir(parents=True, exist_ok=True)
        samples = out_dir / "samples.npz"
        logs = run.run_dir / "logs"
        info: dict[str, Any] = {
            "kimg": actual_kimg,
            "requested_kimg": kimg,
            "num_samples": n,
            "checkpoint": checkpoint.name if checkpoint else "latest",
        }
        if not samples.exists():
            rc, err = self._exec(
                self.commands.sample(run, checkpoint, n, samples, self.profile),
                logs,
                f"sample-{folder}",
            )
            if rc != 0 or not samples.exists():
                return {
                    **info,
                    "error": "sample export failed: "
                    + (describe_exit(rc) if rc < 0 else last_error_line(err) or describe_exit(rc)),
                    "stderr_tail": err,
                }
        rc, err = self._exec(
            self.commands.evaluate(samples, out_dir / "metrics.json", self.profile),
            logs,
            f"evaluate-{folder}",
        )
        if rc != 0 or not (out_dir / "metrics.json").exists():
            return {
                **info,
                "error": "evaluation failed: "
                + (describe_exit(rc) if rc < 0 else last_error_line(err) or describe_exit(rc)),
                "stderr_tail": err,
            }
        atomic_write_json(out_dir / "point.json", info)
        if kimg is not None:
            samples.unlink(missing_ok=True)  # curves need the numbers, not 100 MB of pixels
        return info

    # ----------------------------------------------------------------- floors
    def _floors(self, runs: list[RunSpec]) -> None:
        for res in sorted({r.model.res for r in runs}):
            out_dir = self.runs_dir / "_floor" / f"res-{res}"
            if (out_dir / "metrics.json").exists():
                continue
            self.progress.start_run(0, f"real-vs-real {res}x{res}")
            self.progress.set_phase("evaluate floor")
            out_dir.mkdir(parents=True, exist_ok=True)
            t0 = time.time()
            argv = self.commands.floor(
                res, self.profile.evaluation.num_samples, out_dir / "metrics.json", self.profile
            )
            rc, err = self._exec(argv, out_dir, "floor")
            rec = {"res": res, "argv": argv, "rc": rc, "wall_s": time.time() - t0}
            if rc != 0 or not (out_dir / "metrics.json").exists():
                rec.update(
                    error=describe_exit(rc)
                    if rc < 0
                    else last_error_line(err) or describe_exit(rc),
                    stderr_tail=err,
                )
                self.progress.message(f"real-vs-real floor at {res}x{res} FAILED: {rec['error']}")
            atomic_write_json(out_dir / HARNESS_FILE, rec)

    # ---------------------------------------------------------------- helpers
    def _exec(
        self, argv: list[str], log_dir: Path, step: str, monitor: Callable[[], None] | None = None
    ) -> tuple[int, str]:
        """Run one subprocess with its output in ``log_dir``; returns (rc, stderr tail).

        The child runs in its own session (a terminal's Ctrl-C reaches only the harness, which
        decides what the child hears) and dies with the harness. On Ctrl-C the child gets
        SIGTERM -- the trainers checkpoint at the next step and exit 130 -- and the harness waits
        for it before raising :class:`HarnessInterrupted`.
        """
        log_dir.mkdir(parents=True, exist_ok=True)
        out_path, err_path = log_dir / f"{step}.out", log_dir / f"{step}.err"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                proc = subprocess.Popen(
                    argv,
                    stdout=out,
                    stderr=err,
                    env=child_env(),
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                err.write(f"could not start {argv[0]}: {exc}\n".encode())
                return 127, f"could not start {argv[0]}: {exc}"
            try:
                while proc.poll() is None:
                    if monitor:
                        monitor()
                    time.sleep(self.poll_s)
            except KeyboardInterrupt:
                proc.send_signal(signal.SIGTERM)
                self.progress.message(
                    f"interrupted: asking {step} to stop at its next step (Ctrl-C again to kill it)"
                )
                try:
                    proc.wait()
                except KeyboardInterrupt:
                    proc.kill()
                    proc.wait()
                raise HarnessInterrupted(step, proc.returncode) from None
            except BaseException:
                proc.kill()
                proc.wait()
                raise
        return proc.returncode, tail(err_path)

    def _evals_complete(self, run: RunSpec) -> bool:
        return all(
            (run.run_dir / "eval" / f / "metrics.json").exists()
            for f, _ in eval_points(self.profile)
        )

    def _trained_kimg(self, run: RunSpec) -> float:
        entries = RunDir(run.run_dir).checkpoint_entries() if run.run_dir.exists() else []
        return float(entries[-1]["kimg"]) if entries else 0.0

    def _save(self, run: RunSpec, record: dict[str, Any]) -> None:
        record["updated"] = time.time()
        atomic_write_json(run.run_dir / HARNESS_FILE, record)

    def _sizes(self, runs: list[RunSpec]) -> tuple[dict[str, float], dict[str, float]]:
        """Each run's length in kimg, and the progress line's units of work per kimg.

        Length: the profile's on the images axis; under a compute budget the trainers' own
        resolution of --tflop (``benchmarks.budget``, in a subprocess: the harness imports no
        framework); under a time budget unknown (nan) until it ran. Work per kimg: the run's
        TFLOP per kimg under a compute budget, 1 otherwise."""
        budget = self.profile.budget
        ones = {r.name: 1.0 for r in runs}
        if budget.axis == "images":
            return {r.name: float(budget.kimg) for r in runs}, ones
        if budget.axis == "time":
            return {r.name: float("nan") for r in runs}, ones
        argvs = [self.commands.train(r, self.profile, resume=False) for r in runs]
        sizes = size_commands(argvs)
        kimg = {r.name: float(x["kimg"]) for r, x in zip(runs, sizes)}
        work = {
            r.name: float(x["tflop"]) / float(x["kimg"]) if float(x["kimg"]) > 0 else 1.0
            for r, x in zip(runs, sizes)
        }
        return kimg, work

    def _write_plan(self, runs: list[RunSpec]) -> None:
        atomic_write_json(
            self.runs_dir / "plan.json",
            {
                "profile": profile_to_dict(self.profile),
                "budget": dataclasses.asdict(self.profile.budget),
                "runs": [
                    {
                        "name": r.name,
                        "model": r.model.name,
                        "framework": r.framework,
                        "seed": r.seed,
                        "kimg": self.planned.get(r.name),
                    }
                    for r in runs
                ],
            },
        )

    def _query_hardware(self) -> dict[str, Any]:
        try:
            out = subprocess.run(
                self.commands.hardware(),
                capture_output=True,
                text=True,
                env=child_env(),
                timeout=300,
            )
            return json.loads(out.stdout.strip().splitlines()[-1])
        except (OSError, ValueError, IndexError, subprocess.TimeoutExpired) as exc:
            from gancore.hardware import describe

            return {**describe(), "hardware_query_error": repr(exc)}


def _logged_kimg(run_dir: Path, default: float) -> float:
    """kimg of the last complete log.jsonl tick (read from the file's tail: cheap to poll)."""
    path = run_dir / "log.jsonl"
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - 4096))
            lines = fh.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return default
    for line in reversed(lines):
        try:
            return max(default, float(json.loads(line)["kimg"]))
        except (ValueError, KeyError, TypeError):
            continue
    return default


def _checkpoint_at(rd: RunDir, kimg: float) -> dict[str, Any] | None:
    """The earliest committed checkpoint at or after ``kimg`` (trainers snapshot on a grid)."""
    entries = sorted(rd.checkpoint_entries(), key=lambda e: float(e["kimg"]))
    for e in entries:
        if float(e["kimg"]) >= kimg - 1e-6:
            return e
    return None


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def child_env() -> dict[str, str]:
    """The environment of every child process the harness (and gpu_check) starts."""
    import os

    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # The trainers' tqdm bars go to their .err logs: redraw rarely to keep those readable.
    env.setdefault("TQDM_MININTERVAL", "10")
    # Children run in the caller's working directory (relative --runs-dir / --data-root keep
    # their meaning); the packages live in the repository root, so `-m pkg` works from anywhere.
    root = str(_repo_root())
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def size_commands(argvs: list[list[str]]) -> list[dict[str, float]]:
    """``{"kimg", "tflop"}`` of each trainer command, as the trainers resolve them
    (``python -m benchmarks.budget`` in a subprocess: the harness imports no framework)."""
    try:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.budget"],
            input=json.dumps(argvs),
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=600,
        )
        sizes = json.loads(out.stdout) if not out.returncode else None
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"could not size the runs of the profile: {exc}") from exc
    if sizes is None or len(sizes) != len(argvs):
        raise UserError("could not size the runs of the profile: " + last_error_line(out.stderr))
    return sizes
