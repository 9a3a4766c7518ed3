"""Typed run configs: dataclasses with presets, CLI overrides and validation.

Pattern used by every trainer::

    @dataclass
    class TrainConfig:
        lr: float = field(default=2e-4, metadata={"help": "Adam learning rate (Radford et al.)"})
        ...
        def validate(self) -> None: ...   # raises ValueError with an actionable message

    parser = argparse.ArgumentParser(...)
    add_dataclass_arguments(parser, TrainConfig)
    ns = parser.parse_args(argv)
    cfg = build_config(TrainConfig, PRESETS, ns.preset, overrides_from_namespace(ns, TrainConfig))

Flags default to "not given" (``argparse.SUPPRESS``) so a preset supplies the
value unless the user overrides it; ``--help`` shows the value an omitted flag gets
(the dataclass default, or the preset applied when none is named) and what other presets set.
Booleans are ``--flag / --no-flag`` pairs (never ``type=bool``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import types
import typing
from typing import Any, TypeVar

from gancore.errors import UserError
from gancore.hardware import MALLOC_MODES

T = TypeVar("T")


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _parser_for(tp: Any, name: str):
    """A callable turning one CLI string into a value of type ``tp``."""
    tp, optional = _unwrap_optional(tp)
    origin = typing.get_origin(tp)

    def parse(text: str) -> Any:
        if optional and text.lower() in ("none", "null", ""):
            return None
        if tp in (int, float, str):
            return tp(text)
        if origin in (list, tuple):
            (item,) = typing.get_args(tp)[:1] or (str,)
            vals = [item(v) for v in text.split(",") if v.strip()]
            return tuple(vals) if origin is tuple else vals
        if origin is dict or tp is dict:
            kt, vt = typing.get_args(tp) or (str, str)
            try:
                raw = json.loads(text)
            except json.JSONDecodeError:
                # also accept "4:128,8:64"
                raw = dict(p.split(":", 1) for p in text.split(",") if p.strip())
            return {kt(k): vt(v) for k, v in raw.items()}
        raise TypeError(f"unsupported config field type for --{name}: {tp}")

    parse.__name__ = getattr(tp, "__name__", str(tp))
    return parse


def show_value(value: Any) -> str:
    """A config value as ``--help`` and preset summaries show it (what one would type)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ",".join(f"{k}:{show_value(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ",".join(show_value(v) for v in value) or "none"
    return str(value)


def preset_flags(values: dict[str, Any]) -> str:
    """What a preset sets, as the flags that would set it: ``--max-res 32 --no-mirror ...``."""
    out = []
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + flag[2:])
        else:
            out.append(f"{flag} {show_value(value)}")
    return " ".join(out)


def default_note(
    name: str,
    default: Any,
    defaults: tuple[str, dict[str, Any]] | None = None,
    alternatives: dict[str, dict[str, Any]] | None = None,
) -> str | None:
    """ "default: X" for field ``name``, honest about presets.

    ``defaults`` = (label, values) applied when the user names no preset: where it sets the
    field, its value is the default ("160, from the quick preset"). ``alternatives`` =
    {label: values} of the other presets: those that set the field to something else are
    listed ("cifar10: 20000"). None when there is nothing useful to say (a None default: the
    help text says in words what an omitted flag means).
    """
    shown = default
    text = ""
    if defaults and name in defaults[1]:
        shown = defaults[1][name]
        text = f", from {defaults[0]}"
    if shown is None:
        return None
    others = [
        f"{label}: {show_value(values[name])}"
        for label, values in (alternatives or {}).items()
        if name in values and values[name] != shown
    ]
    text = f"default: {show_value(shown)}{text}"
    return text + (f"; {', '.join(others)}" if others else "")


def add_dataclass_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    exclude: tuple[str, ...] = (),
    group_title: str | None = None,
    defaults: tuple[str, dict[str, Any]] | None = None,
    alternatives: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Add one flag per dataclass field, with help text from ``field(metadata={"help": ...})``.

    Each help ends with the value used when the flag is omitted (see :func:`default_note`:
    ``defaults`` is the preset applied when none is named, ``alternatives`` the presets a
    user may name), unless the help already says it ("(default ...").
    """
    hints = typing.get_type_hints(cls)
    target = parser.add_argument_group(group_title) if group_title else parser
    for f in dataclasses.fields(cls):
        if f.name in exclude or not f.init:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = (
            f.default
            if f.default is not dataclasses.MISSING
            else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
            )
        )
        help_text = f.metadata.get("help", "")
        note = default_note(f.name, default, defaults, alternatives)
        if note and "(default" not in help_text:
            help_text = f"{help_text} ({note})" if help_text else note
        help_text = help_text.replace("%", "%%")
        if f.metadata.get("hidden"):
            help_text = argparse.SUPPRESS
        tp, _ = _unwrap_optional(hints[f.name])
        if tp is bool:
            target.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
        else:
            kwargs: dict[str, Any] = {
                "dest": f.name,
                "default": argparse.SUPPRESS,
                "help": help_text,
                "type": _parser_for(hints[f.name], f.name),
            }
            if "choices" in f.metadata:
                kwargs["choices"] = f.metadata["choices"]
            target.add_argument(flag, **kwargs)


def overrides_from_namespace(ns: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields the user actually passed on the command line."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(ns).items() if k in names}


def build_config(
    cls: type[T],
    presets: dict[str, dict[str, Any]] | None,
    preset: str | None,
    overrides: dict[str, Any] | None = None,
) -> T:
    """Dataclass defaults <- preset values <- CLI overrides, then ``validate()``.

    Validation errors become :class:`UserError` so CLIs print them cleanly.
    """
    values: dict[str, Any] = {}
    if preset is not None:
        if not presets or preset not in presets:
            raise UserError(f"unknown preset {preset!r}; choose one of {sorted(presets or {})}")
        values.update(presets[preset])
    values.update(overrides or {})
    try:
        cfg = cls(**values)
        check_finite(cfg)
        if hasattr(cfg, "validate"):
            cfg.validate()
    except (ValueError, TypeError) as exc:
        raise UserError(f"invalid configuration: {exc}") from exc
    return cfg


def check_finite(cfg: Any) -> None:
    """Every number in the config (also inside lists and dicts) must be finite.

    Range checks such as ``x <= 0`` are False for NaN, so NaN and inf are refused here, once,
    before any config's own ``validate``.
    """
    for f in dataclasses.fields(cfg):
        for value in _numbers(getattr(cfg, f.name)):
            if not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value}")


def _numbers(value: Any):
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield float(value)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)


def check_loop_fields(cfg: Any) -> None:
    """The fields every trainer's config shares (same names, same rules)."""
    if cfg.seed < 0:
        raise ValueError(f"seed must be >= 0, got {cfg.seed}")
    if cfg.grid_size < 1:
        raise ValueError(f"grid_size must be >= 1, got {cfg.grid_size}")
    if cfg.kimg <= 0:
        raise ValueError(f"kimg must be positive, got {cfg.kimg}")
    for name in ("tick_kimg", "snapshot_kimg"):
        if getattr(cfg, name) < 0.001:
            raise ValueError(f"{name} must be at least 0.001 (one image), got {getattr(cfg, name)}")
    if cfg.keep_checkpoints < 0:
        raise ValueError("keep_checkpoints must be >= 0 (0 keeps all)")
    if cfg.max_bad_steps < 1:
        raise ValueError(f"max_bad_steps must be >= 1, got {cfg.max_bad_steps}")
    if cfg.max_abs_loss <= 0:
        raise ValueError(f"max_abs_loss must be positive, got {cfg.max_abs_loss}")
    if getattr(cfg, "tflop", None) is not None and cfg.tflop <= 0:
        raise ValueError(f"tflop must be positive, got {cfg.tflop}")
    if cfg.malloc not in MALLOC_MODES:
        raise ValueError(f"malloc must be one of {MALLOC_MODES}, got {cfg.malloc!r}")
    if getattr(cfg, "max_minutes", None) is not None and cfg.max_minutes <= 0:
        raise ValueError(f"max_minutes must be positive, got {cfg.max_minutes}")
    if cfg.threads < 0:
        raise ValueError("threads must be >= 0 (0: the framework's default, all cores)")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", cfg.device):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {cfg.device!r}")
    nan = getattr(cfg, "debug_nan_kimg", None)
    if nan is not None and len(nan) != 2:
        raise ValueError("debug_nan_kimg needs two numbers: start,end")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """JSON-ready dict (tuples become lists, dict keys strings)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def config_from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a config from ``config.json``, restoring int dict keys and tuples; unknown keys ignored."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        tp, _ = _unwrap_optional(hints[f.name])
        origin = typing.get_origin(tp)
        if value is not None and (origin is dict or tp is dict):
            kt, vt = typing.get_args(tp) or (str, object)
            value = {kt(k): (vt(v) if vt in (int, float, str) else v) for k, v in value.items()}
        elif value is not None and origin is tuple:
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def format_config(cfg: Any) -> str:
    """Human-readable dump for ``--dry-run``."""
    return json.dumps(config_to_dict(cfg), indent=2, sort_keys=True)


# The loop fields both trainer configs declare (DCGAN's TrainConfig, ProGANConfig): one default
# and one help text each, so the two --help pages say the same thing.
_LOOP_FIELDS: dict[str, tuple[Any, dict[str, Any]]] = {
    "tflop": (
        None,
        {
            "help": "training budget in TFLOP (10^12 floating-point operations of the training "
            "steps, counted with the PyTorch twin; the TensorFlow twin is identical): sets "
            "--kimg so the run's training compute reaches it (equal-compute comparisons)"
        },
    ),
    "max_minutes": (
        None,
        {
            "help": "wall-clock budget: end the run (final checkpoint and grids) once its "
            "training time over all sessions reaches this many minutes, even before --kimg "
            "(default: no limit)"
        },
    ),
    "max_bad_steps": (
        20,
        {
            "help": "consecutive skipped steps (a non-finite or exploding loss, skipped as the "
            "official ProGAN code does) before the run stops as diverged (exit status 3)"
        },
    ),
    "max_abs_loss": (
        1e8,
        {
            "help": "a step whose |loss| exceeds this is treated as diverging: skipped and "
            "counted like a non-finite one"
        },
    ),
    "malloc": (
        "tuned",
        {
            "help": "CPU memory allocator: tuned (glibc keeps freed blocks up to 32 MiB for reuse "
            "instead of returning them to the kernel, so a step does not page-fault its "
            "tensors in again; the process may hold up to 256 MiB of freed memory) or default "
            "(glibc's own thresholds). Process-wide; MALLOC_* or GLIBC_TUNABLES in the "
            "environment win",
            "choices": list(MALLOC_MODES),
        },
    ),
    "debug_nan_kimg": (None, {"help": "testing hook", "hidden": True}),
}


def ema_decay(beta: float, rampup: float, nimg: int, batch: int) -> float:
    """EMA decay of G's weights for the minibatch of ``batch`` images starting at image ``nimg``.

    ``beta`` itself unless ``rampup`` > 0; then the half-life in images,
    ``batch * ln 0.5 / ln beta``, is capped at ``rampup * nimg`` (StyleGAN2-ADA's ramp-up), so
    the average starts as a copy of G and lengthens its memory as training goes on, up to
    ``beta``'s half-life. Shared by both trainers so that their EMAs follow one rule.
    """
    if rampup <= 0 or beta <= 0:
        return beta
    half_life = batch * math.log(0.5) / math.log(beta)
    half_life = min(half_life, rampup * nimg)
    return 0.5 ** (batch / max(half_life, 1e-8))


def loop_field(name: str) -> Any:
    """The dataclass field of loop flag ``name`` (see ``_LOOP_FIELDS``)."""
    default, metadata = _LOOP_FIELDS[name]
    return dataclasses.field(default=default, metadata=dict(metadata))
