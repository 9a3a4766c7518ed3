"""Benchmark profiles: declarative TOML files that say what grid to train and how to score it.

A profile fixes the data set, the resolution, which models and frameworks, one training
budget for every model (so the comparison is per unit of the budget's axis), the seeds, the
metrics, the sample counts and the evaluation points. The budget has one of three axes:

- ``budget = { tflop = 28 }``: equal training compute. Each model trains until its training
  steps have used this many TFLOP (counted once per model and resolution with the PyTorch twin;
  the TensorFlow twin runs the same networks, so the count is machine- and framework-
  independent); the images shown follow from each model's cost per image.
- ``budget = { kimg = 60 }`` (or the older top-level ``kimg = 60``): equal images shown.
- ``budget = { minutes = 4 }``: equal wall-clock training time on this machine.

Example (``benchmarks/profiles/default.toml``)::

    description = "offline default"
    dataset = "stacked-digits"
    resolution = 32
    budget = { tflop = 28 }         # per model, the same for all
    seeds = 1                       # N -> seeds 0..N-1, or an explicit list [0, 7]
    frameworks = ["torch", "tf"]
    snapshot_kimg = 5               # checkpoint interval (evaluation points must be multiples)
    throughput_tflops = 0.12        # sustained TFLOP/s of the device: `--dry-run` estimates time
    eval_kimg = [5, 10, 15]         # intermediate checkpoints scored for the curves (final always)

    [evaluation]
    metrics = ["swd", "msssim", "ndb", "modes", "birthday"]
    num_samples = 2000              # images exported and scored at every evaluation point
    floor = true                    # score real vs real once per profile (disjoint halves of
                                    # floor_split, default "train")

    [models.dcgan]                  # the table name is the run-folder name
    kind = "dcgan"                  # dcgan | sndcgan | progan | sn-progan (default: the table name)
    batch = 64
    args = { }                      # extra trainer flags: {snake_case = value} -> --snake-case value
    why = "..."                     # optional: the reason for these settings (report's protocol)

    [models.progan]
    preset = "cifar10"
    res = 32                        # optional per-model resolution (ProGAN's --max-res)
    args = { stabilize_kimg = 4, fade_kimg = 4 }

    [models.sn-progan]              # the ProGAN CLIs with an SN-ProGAN preset (required)
    preset = "sn-progan-quick"

Loading validates everything and raises :class:`gancore.UserError` naming the
file and the key, so a typo fails before an hour of training, not after.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from gancore import UserError

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
KINDS = ("dcgan", "sndcgan", "progan", "sn-progan")
PROGRESSIVE = ("progan", "sn-progan")  # trained by the ProGAN CLIs, with a --preset
FRAMEWORKS = ("torch", "tf")
KIND_LABELS = {
    "dcgan": "DCGAN",
    "sndcgan": "SN-DCGAN",
    "progan": "ProGAN",
    "sn-progan": "SN-ProGAN",
}
FRAMEWORK_LABELS = {"torch": "PyTorch", "tf": "TensorFlow"}
# Flags the harness sets itself; a profile may not override them through `args`,
# because the grid's fairness (same budget, same seeds) depends on them.
RESERVED_ARGS = {
    "kimg",
    "tflop",
    "max_minutes",
    "seed",
    "out",
    "resume",
    "dataset",
    "data_root",
    "device",
    "res",
    "max_res",
    "model",
    "framework",
    "preset",
    "batch",
    "keep_checkpoints",
    "snapshot_kimg",
    "dry_run",
}

_TOP_KEYS = {
    "description",
    "dataset",
    "resolution",
    "kimg",
    "budget",
    "seeds",
    "frameworks",
    "device",
    "snapshot_kimg",
    "eval_kimg",
    "evaluation",
    "models",
    "data_root",
    "throughput_tflops",
}
_EVAL_KEYS = {"metrics", "num_samples", "floor", "floor_split", "args", "batch"}
_MODEL_KEYS = {"kind", "label", "res", "batch", "preset", "args", "frameworks", "why"}


@dataclass(frozen=True)
class ModelSpec:
    """One model entry of a profile (a row of the grid, crossed with frameworks)."""

    name: str  # run-folder name, e.g. "progan-128"
    kind: str  # dcgan | sndcgan | progan | sn-progan
    label: str  # human name in the report
    res: int
    frameworks: tuple[str, ...]
    batch: int | None = None  # vanilla GANs: --batch; ProGAN takes batch sizes from its preset
    preset: str | None = None  # ProGAN / SN-ProGAN: --preset
    args: dict[str, Any] = field(default_factory=dict)
    why: str = ""  # the reason for this entry's settings, printed in the report's protocol


@dataclass(frozen=True)
class EvalSpec:
    metrics: tuple[str, ...]
    # One N for every evaluation point: metric keys carry N (swd_2k_avg), so curves only
    # join up with the final value when every point is scored on the same number of images.
    num_samples: int
    floor: bool = True
    floor_split: str = "train"  # real-vs-real: disjoint halves of this split vs the reference
    batch: int | None = None  # sample CLI --batch
    args: dict[str, Any] = field(default_factory=dict)  # extra evaluate CLI flags


@dataclass(frozen=True)
class Budget:
    """The one training budget every model of a profile gets, on one axis."""

    axis: str  # "compute" | "images" | "time"
    tflop: float | None = None
    kimg: float | None = None
    minutes: float | None = None

    def trainer_flags(self) -> list[str]:
        """The trainer flags that impose the budget."""
        if self.axis == "compute":
            return ["--tflop", _num(self.tflop)]
        if self.axis == "images":
            return ["--kimg", _num(self.kimg)]
        return ["--max-minutes", _num(self.minutes), "--kimg", _num(self.kimg or 100_000)]

    def describe(self) -> str:
        if self.axis == "compute":
            return f"equal training compute: {self.tflop:g} TFLOP per model"
        if self.axis == "images":
            return f"equal images shown: {self.kimg:g} kimg per model"
        return f"equal wall-clock training time: {self.minutes:g} min per model on this machine"


def _num(x: float | None) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Profile:
    name: str
    path: Path
    description: str
    dataset: str
    resolution: int
    kimg: float | None  # images per model when the budget is on the images axis, else None
    seeds: tuple[int, ...]
    frameworks: tuple[str, ...]
    models: tuple[ModelSpec, ...]
    evaluation: EvalSpec
    snapshot_kimg: float
    eval_kimg: tuple[float, ...] = ()
    device: str = "auto"
    data_root: str | None = None
    budget: Budget = field(default_factory=lambda: Budget("images", kimg=1.0))
    # sustained training throughput of the profile's device (TFLOP/s) for the --dry-run
    # wall-clock estimate; the profile's comment says where the figure comes from
    throughput_tflops: float | None = None

    def with_overrides(
        self, seeds: int | None = None, device: str | None = None, data_root: str | None = None
    ) -> Profile:
        """The profile with the command-line overrides (``--seeds N`` means seeds 0..N-1)."""
        changes: dict[str, Any] = {}
        if seeds is not None:
            if seeds < 1:
                raise UserError(f"--seeds must be at least 1, got {seeds}")
            changes["seeds"] = tuple(range(seeds))
        if device is not None:
            changes["device"] = device
        if data_root is not None:
            changes["data_root"] = data_root
        return _replace(self, **changes)


def _replace(obj: Any, **changes: Any) -> Any:
    return dataclasses.replace(obj, **changes)


def profile_to_dict(profile: Profile) -> dict[str, Any]:
    """JSON-ready dict of a resolved profile (stored in ``plan.json`` and ``results.json``)."""
    import json

    return json.loads(json.dumps(dataclasses.asdict(profile), default=str))


def list_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def resolve_profile_path(name_or_path: str) -> Path:
    """A bundled profile name (``default``) or a path to any ``.toml`` file."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise UserError(f"profile file {p} does not exist.")
        return p
    bundled = PROFILES_DIR / f"{name_or_path}.toml"
    if not bundled.is_file():
        raise UserError(
            f"unknown profile {name_or_path!r}; choose one of {list_profiles()} "
            f"or pass a path to a .toml file."
        )
    return bundled


def load_profile(name_or_path: str) -> Profile:
    path = resolve_profile_path(name_or_path)
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"profile {path} is not valid TOML: {exc}") from exc
    try:
        return parse_profile(raw, name=path.stem, path=path)
    except ValueError as exc:
        raise UserError(f"profile {path}: {exc}") from exc


def parse_profile(raw: dict[str, Any], name: str, path: Path | None = None) -> Profile:
    """Build and validate a :class:`Profile`; raises ``ValueError`` saying which key is wrong."""
    _no_unknown(raw, _TOP_KEYS, "top level")
    for key in ("dataset", "resolution", "models", "evaluation"):
        if key not in raw:
            raise ValueError(f"missing required key {key!r}")
    dataset = _typed(raw, "dataset", str)
    resolution = _pow2(_typed(raw, "resolution", int), "resolution")
    budget = _budget(raw)
    kimg = budget.kimg if budget.axis == "images" else None
    seeds = _seeds(raw.get("seeds", 1))
    frameworks = _frameworks(raw.get("frameworks", list(FRAMEWORKS)), "frameworks")
    snapshot = float(raw.get("snapshot_kimg", kimg or 1.0))
    if snapshot <= 0:
        raise ValueError(f"snapshot_kimg must be positive, got {snapshot}")
    eval_kimg = tuple(sorted(float(k) for k in raw.get("eval_kimg", [])))
    if eval_kimg and kimg is None:
        raise ValueError(
            "eval_kimg needs a budget on the images axis (on the compute or time axis each "
            "model shows a different number of images); score the final checkpoint only"
        )
    for k in eval_kimg:
        if not 0 < k < kimg:
            raise ValueError(
                f"eval_kimg entry {k} must lie strictly between 0 and kimg ({kimg}); "
                "the final checkpoint is always scored"
            )
        if abs(k / snapshot - round(k / snapshot)) > 1e-6:
            raise ValueError(
                f"eval_kimg entry {k} is not a multiple of snapshot_kimg ({snapshot}), "
                "so no checkpoint would exist there"
            )
    device = _typed(raw, "device", str) if "device" in raw else "auto"
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    models = _models(raw["models"], resolution, frameworks)
    throughput = raw.get("throughput_tflops")
    if throughput is not None and (
        isinstance(throughput, bool)
        or not isinstance(throughput, (int, float))
        or not throughput > 0
    ):
        raise ValueError(f"throughput_tflops must be a positive number, got {throughput!r}")
    return Profile(
        name=name,
        path=Path(path) if path else Path(f"{name}.toml"),
        description=str(raw.get("description", "")),
        dataset=dataset,
        resolution=resolution,
        kimg=kimg,
        seeds=seeds,
        frameworks=frameworks,
        models=models,
        evaluation=_evaluation(raw["evaluation"]),
        snapshot_kimg=snapshot,
        eval_kimg=eval_kimg,
        device=device,
        data_root=raw.get("data_root"),
        budget=budget,
        throughput_tflops=None if throughput is None else float(throughput),
    )


def _budget(raw: dict[str, Any]) -> Budget:
    """``budget = {tflop|kimg|minutes = N}``, or the older top-level ``kimg = N``."""
    if "budget" in raw and "kimg" in raw:
        raise ValueError("give either budget = {...} or kimg, not both")
    if "budget" not in raw:
        if "kimg" not in raw:
            raise ValueError("missing required key 'budget' (e.g. budget = { tflop = 28 })")
        table = {"kimg": raw["kimg"]}
    else:
        table = raw["budget"]
        if not isinstance(table, dict):
            raise ValueError("budget must be a table, e.g. budget = { tflop = 28 }")
    _no_unknown(table, {"tflop", "kimg", "minutes"}, "budget")
    axes = [k for k in ("tflop", "minutes") if k in table] or [k for k in ("kimg",) if k in table]
    if len(axes) != 1 or ("tflop" in table and "kimg" in table):
        raise ValueError(
            "budget needs exactly one of tflop, kimg or minutes (kimg may bound minutes)"
        )
    values = {}
    for key in table:
        v = _number(table, key)
        if not v > 0 or v != v or v == float("inf"):
            raise ValueError(f"budget {key} must be a positive number, got {table[key]!r}")
        values[key] = v
    axis = {"tflop": "compute", "kimg": "images", "minutes": "time"}[axes[0]]
    return Budget(axis, values.get("tflop"), values.get("kimg"), values.get("minutes"))


def _models(table: Any, resolution: int, frameworks: tuple[str, ...]) -> tuple[ModelSpec, ...]:
    if not isinstance(table, dict) or not table:
        raise ValueError("[models] must be a table with at least one [models.NAME] entry")
    out = []
    for name, m in table.items():
        where = f"[models.{name}]"
        if not isinstance(m, dict):
            raise ValueError(f"{where} must be a table")
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"{where}: model names may hold letters, digits, '-' and '_' only")
        _no_unknown(m, _MODEL_KEYS, where)
        kind = m.get("kind", name)
        if kind not in KINDS:
            raise ValueError(
                f"{where}: kind {kind!r} is not one of {KINDS} "
                "(set kind = ... when the table name is not a model kind)"
            )
        args = m.get("args", {})
        if not isinstance(args, dict):
            raise ValueError(f"{where}: args must be a table of trainer flags")
        bad = sorted(set(args) & RESERVED_ARGS)
        if bad:
            raise ValueError(
                f"{where}: args may not set {bad}; the harness sets them from the "
                "profile (kimg, seeds, res/batch/preset keys of the model entry)"
            )
        why = m.get("why", "")
        if not isinstance(why, str):
            raise ValueError(f"{where}: why must be a string (the reason for the entry's settings)")
        if kind in PROGRESSIVE and "batch" in m:
            raise ValueError(f"{where}: ProGAN takes its batch sizes from its preset; remove batch")
        if kind not in PROGRESSIVE and "preset" in m:
            raise ValueError(f"{where}: preset applies to ProGAN only")
        if kind == "sn-progan" and "preset" not in m:
            raise ValueError(
                f"{where}: an sn-progan model needs an SN-ProGAN preset, e.g. "
                'preset = "sn-progan-quick"'
            )
        if kind in PROGRESSIVE and "preset" in m:
            _check_preset(m["preset"], kind, where)
        res = _pow2(int(m.get("res", resolution)), f"{where} res")
        out.append(
            ModelSpec(
                name=name,
                kind=kind,
                label=str(m.get("label", KIND_LABELS[kind])),
                res=res,
                frameworks=_frameworks(
                    m.get("frameworks", list(frameworks)), f"{where} frameworks"
                ),
                batch=int(m.get("batch", 64)) if kind not in PROGRESSIVE else None,
                preset=m.get("preset"),
                args=dict(args),
                why=why.strip(),
            )
        )
    return tuple(out)


def _check_preset(preset: Any, kind: str, where: str) -> None:
    """The preset exists and trains the model the entry's kind names (the run's ``model``:
    ``sn-progan`` when it normalises G and D spectrally), so rows and run folders agree."""
    try:
        from progan_common.config import PRESETS, ProGANConfig
    except ImportError:  # ProGAN's config not installed: the trainer will check it
        return
    if preset not in PRESETS:
        raise ValueError(
            f"{where}: unknown ProGAN preset {preset!r}; choose one of {sorted(PRESETS)}"
        )
    model = ProGANConfig(**PRESETS[preset]).model_name
    if model != kind:
        fits = sorted(n for n, v in PRESETS.items() if ProGANConfig(**v).model_name == kind)
        raise ValueError(
            f'{where}: preset {preset!r} trains {model}, not {kind}; set kind = "{model}" '
            f"or choose one of {fits}"
        )


def _evaluation(e: Any) -> EvalSpec:
    if not isinstance(e, dict):
        raise ValueError("[evaluation] must be a table")
    _no_unknown(e, _EVAL_KEYS, "[evaluation]")
    metrics = e.get("metrics")
    if not isinstance(metrics, list) or not metrics or not all(isinstance(x, str) for x in metrics):
        raise ValueError("[evaluation] metrics must be a non-empty list of metric names")
    n = int(e.get("num_samples", 0))
    if n < 2:
        raise ValueError(f"[evaluation] num_samples must be at least 2, got {n}")
    from benchmarks.metrics import METRICS  # the evaluate CLI's registry (imports no framework)

    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"[evaluation] unknown metric(s) {unknown}; available: {sorted(METRICS)}")
    return EvalSpec(
        metrics=tuple(metrics),
        num_samples=n,
        floor=bool(e.get("floor", True)),
        floor_split=str(e.get("floor_split", "train")),
        batch=e.get("batch"),
        args=dict(e.get("args", {})),
    )


def _no_unknown(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; allowed: {sorted(allowed)}")


def _typed(raw: dict[str, Any], key: str, tp: type) -> Any:
    value = raw[key]
    if not isinstance(value, tp) or isinstance(value, bool):
        raise ValueError(f"{key} must be a {tp.__name__}, got {value!r}")
    return value


def _number(raw: dict[str, Any], key: str) -> float:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number, got {value!r}")
    return float(value)


def _pow2(x: int, what: str) -> int:
    if x < 4 or x & (x - 1):
        raise ValueError(f"{what} must be a power of two >= 4, got {x}")
    return x


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"seeds must be at least 1, got {value}")
        return tuple(range(value))
    if isinstance(value, list) and value and all(isinstance(s, int) for s in value):
        if len(set(value)) != len(value):
            raise ValueError(f"seeds list has duplicates: {value}")
        return tuple(value)
    raise ValueError(f"seeds must be a count (int) or a non-empty list of ints, got {value!r}")


def _frameworks(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or any(v not in FRAMEWORKS for v in value):
        raise ValueError(
            f"{what} must be a non-empty list drawn from {list(FRAMEWORKS)}, got {value!r}"
        )
    return tuple(value)
