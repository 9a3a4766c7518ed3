"""The shell commands of the documentation, and how ``tests/test_docs.py`` runs each one.

Commands come from every fenced ```` ```bash ```` (or ``sh`` / ``shell``) block of every
Markdown file of the repository except generated reports (``benchmarks/results/``) and the
changelog. A trailing ``\\`` joins lines; ``#`` starts a comment. The commands of one file run
in order in one temporary folder, as a reader follows a README from top to bottom (a
``sample`` after a ``train`` finds its run, an evaluation its samples), never in the
repository.

How a documented command is run (the rules, in order; :func:`plan`):

1. ``$DATA_DIR`` becomes the absolute path of the real data (``REAL_DATA``); a command that
   uses it is skipped when that folder is absent.
2. A *template* (a command with a placeholder the reader fills in: see ``PLACEHOLDERS``) is
   not run; its command line must still name an existing CLI and only flags it knows.
3. ``pip install ...`` is not run (it installs from a package registry).
4. ``make TARGET VAR=...`` runs as ``make -n`` (the recipe must expand); the harness command
   it expands to then runs with ``--dry-run`` (``bench``) or ``--help`` (``report``).
   ``make test`` / ``install`` / ``lint`` are only expanded.
5. ``cd DIR && python FILE.py --help`` runs in that folder of the repository (help only).
6. ``torchrun [opts] -m MODULE ARGS`` runs as ``python -m MODULE ARGS --dry-run`` (the
   multi-process launch itself is tested in ``tests/progan_torch/test_distributed.py``).
7. ``python -m pytest ARGS`` only collects (``--collect-only``), from the repository root.
8. Long commands get tiny sizes appended (``TINY``; argparse keeps the last value of a flag),
   and some values are capped (``CAPS``): a training of a few dozen images up to 32x32 (the
   size every metric takes), a sample of 64 images, a benchmark of one step.
   ``--resume`` gets a slightly larger ``--kimg`` than the tiny run it continues. Commands
   that need the separately installed reference package run with ``--help``.

``cheap`` commands (help, dry runs, listings, ``make -n``, preparing data sets) run in the
default test run; the rest run in the ``slow`` test of their file.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The real data for the tests that need it: $DATA_DIR when set (the folder the READMEs' examples
# call $DATA_DIR), else a `shared/data` folder beside the clone (the development machine's
# layout). Tests that need it skip when neither exists.
REAL_DATA = Path(os.environ.get("DATA_DIR") or ROOT.parent / "shared" / "data")

# Folders whose Markdown is not documentation a user follows.
EXCLUDED = ("benchmarks/results/", "runs/", "reports/", ".venv/", "build/", "CHANGELOG.md")

# A command containing one of these is a template: the reader must fill something in.
PLACEHOLDERS = (
    r"\.\.\.",  # "--preset celebahq ..." or "ckpt-...kimg.pt"
    r"(?<![\w/])\[",  # "[--threads 1]": optional parts
    r"\bRUN(_DIR)?\b",  # --run RUN_DIR, RUN/samples.npz
    r"(?<![\w.])/?path/to/",
    r"(?<![\w.])/data/",
    r"\bmy\.toml\b",
)

_TINY_PROGAN = (
    "--max-res 32 --latent-dim 8 --fmap-base 16 --fmap-max 8 --default-batch 4 "
    "--batch-sizes {} --lr-dict {}"
)
# Appended to long commands (argparse: the last value of a flag wins).
TINY: dict[str, str] = {
    "vanilla_gan.train": "--kimg 0.032 --width 8 --batch 16 --tick-kimg 0.016 "
    "--snapshot-kimg 0.016 --grid-size 4 --threads 1 --no-progress",
    "progan_torch.train": _TINY_PROGAN + " --stabilize-kimg 0.008 --fade-kimg 0.008 "
    "--kimg 0.064 --tick-kimg 0.016 --snapshot-kimg 0.016 --grid-size 4 --threads 1 "
    "--no-progress",
    "resume": "--kimg 0.08 --no-progress",
    "vanilla_gan.bench": "--steps 1 --warmup 1 --width 8 --batch 8 --rounds 1 --threads 1",
    "progan_torch.bench": _TINY_PROGAN + " --steps 1 --warmup 1 --batch 4 --threads 1",
    "datasets.bench": "--res 32 --count 256 --seconds 0.2 --rounds 1 --no-memory-check",
    "benchmarks.evaluate": "--max-samples 64 --swd-n 64 --msssim-pairs 16 --modes-n 64 "
    "--ndb-n 64 --ndb-ref-n 512 --ndb-k 10 --birthday-s 16 --birthday-batches 2 "
    "--inception-n 64 --prc-n 64 --quiet",
}
TINY["progan_tf.train"] = TINY["progan_torch.train"]
TINY["progan_tf.bench"] = TINY["progan_torch.bench"]
TINY["progan_common.bench_frameworks"] = (
    _TINY_PROGAN + " --steps 1 --warmup 1 --rewarm 0 --rounds 1 --batch 4 --threads 1"
)
# Values capped wherever the flag appears in these CLIs.
CAPS: dict[str, dict[str, int]] = {
    "vanilla_gan.sample": {"--n": 64},  # 64: enough for every metric's smallest N
    "progan_torch.sample": {"--n": 64, "--interpolate": 4},
    "progan_tf.sample": {"--n": 64, "--interpolate": 4},
}
# CLIs that need something this project never installs (run with --help instead).
HELP_ONLY = {"progan_torch.bench_reference": "needs the separately installed pro-gan-pth"}
# CLIs whose first positional argument is a subcommand.
SUBCOMMANDS = {"datasets", "benchmarks.harness", "benchmarks.evaluate", "progan_tf.convert"}
# Flags that name files a command writes: examples keep them under runs/ or reports/.
OUTPUT_FLAGS = ("--out", "--json", "--runs-dir", "--reports-dir", "--artifact-dir")


@dataclass
class DocCommand:
    file: str  # relative to the repository root
    line: int  # line of the command's first line
    text: str  # as documented, continuations joined, comment removed
    tokens: list[str]

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Block:
    file: str
    line: int
    commands: list[DocCommand]

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Plan:
    """How one documented command is run (or why it is not)."""

    command: DocCommand
    argv: list[str] | None = None  # None: not run
    cwd: Path | None = None  # None: the block's temporary folder
    env: dict[str, str] = field(default_factory=dict)
    cheap: bool = False
    skip: str | None = None  # why it is not run at all
    template: bool = False
    cli: tuple[str, str | None] | None = None  # (module, subcommand) for the flag check
    make_then: str | None = None  # after `make -n`: run the harness line with this flag
    needs_data: bool = False

    @property
    def described(self) -> str:
        return shlex.join(self.argv) if self.argv else "(not run)"


def doc_files() -> list[Path]:
    out = []
    for path in sorted(ROOT.rglob("*.md")):
        rel = path.relative_to(ROOT).as_posix()
        if any(rel.startswith(x) or f"/{x}" in f"/{rel}" for x in EXCLUDED) or ".egg-info" in rel:
            continue
        out.append(path)
    return out


def parse_blocks(text: str, file: str) -> list[Block]:
    """Fenced bash blocks of one Markdown text, each as its list of commands."""
    blocks: list[Block] = []
    current: Block | None = None
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            if current is None and stripped[3:].strip() in ("bash", "sh", "shell"):
                current = Block(file, number, [])
            elif current is not None:
                if current.commands:
                    blocks.append(current)
                current = None
            continue
        if current is None:
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined, pending = pending + line, ""
        tokens = shlex.split(joined, comments=True)
        if tokens:
            text_only = shlex.join(tokens)
            current.commands.append(DocCommand(file, start, text_only, tokens))
    return blocks


def all_blocks() -> list[Block]:
    blocks = []
    for path in doc_files():
        blocks += parse_blocks(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    return blocks


def is_template(text: str) -> bool:
    return any(re.search(p, text) for p in PLACEHOLDERS)


def flags_of(tokens: list[str]) -> list[str]:
    return [t.split("=", 1)[0] for t in tokens if re.fullmatch(r"--[a-z][\w-]*(=.*)?", t)]


def _module_and_args(tokens: list[str]) -> tuple[str | None, list[str]]:
    """``python -m MOD ARGS`` -> (MOD, ARGS); anything else -> (None, tokens)."""
    if len(tokens) >= 3 and tokens[0] in ("python", "python3") and tokens[1] == "-m":
        return tokens[2], tokens[3:]
    return None, tokens


def _subcommand(module: str, args: list[str]) -> str | None:
    if module in SUBCOMMANDS and args and not args[0].startswith("-"):
        return args[0]
    return None


def _cap(module: str, args: list[str]) -> list[str]:
    caps = CAPS.get(module, {})
    out = list(args)
    for i, tok in enumerate(out[:-1]):
        if tok in caps and out[i + 1].isdigit():
            out[i + 1] = str(min(int(out[i + 1]), caps[tok]))
    return out


def plan(cmd: DocCommand, python: str = sys.executable) -> Plan:
    """Apply the module docstring's rules to one documented command."""
    tokens = [t.replace("$DATA_DIR", str(REAL_DATA)) for t in cmd.tokens]
    p = Plan(cmd, needs_data="$DATA_DIR" in cmd.text)
    env = {}
    while tokens and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", tokens[0]):
        key, value = tokens.pop(0).split("=", 1)
        env[key] = value
    p.env = env
    p.template = is_template(cmd.text)
    if p.needs_data and not REAL_DATA.is_dir():
        p.skip = f"needs the real data ($DATA_DIR; {REAL_DATA} absent)"

    if tokens[:1] == ["pip"] or tokens[1:3] == ["-m", "pip"]:
        p.skip = "installs from a package registry"
        return p
    if tokens[0] == "make":
        target = next((t for t in tokens[1:] if "=" not in t), None)
        p.cli = ("make", target)
        p.argv = ["make", "-s", "-n", "-C", str(ROOT), *tokens[1:]]
        p.make_then = {"bench": "--dry-run", "report": "--help"}.get(target or "")
        p.cheap = True
        return p
    if tokens[0] == "cd" and len(tokens) > 3 and tokens[2] == "&&":
        rest = tokens[3:]
        p.cwd = ROOT / tokens[1]
        p.argv = [python, *rest[1:]]
        p.cheap = "--help" in rest
        if not p.cheap:
            p.skip = "only `cd DIR && python FILE.py --help` runs inside the repository"
        return p
    if tokens[0] == "torchrun":
        i = tokens.index("-m")
        module, args = tokens[i + 1], tokens[i + 2 :]
        tokens = ["python", "-m", module, *args, "--dry-run"]

    module, args = _module_and_args(tokens)
    if module is None:
        p.skip = f"not a command this test knows how to run: {tokens[0]}"
        return p
    sub = _subcommand(module, args)
    p.cli = (module, sub)
    if module == "pytest":
        p.cli = None  # pytest's own flags, not one of this project's command lines
        p.cwd = ROOT
        p.argv = [python, "-m", "pytest", *args, "--collect-only", "-q", "-p", "no:cacheprovider"]
        return p
    if module in HELP_ONLY:
        p.argv = [python, "-m", module, "--help"]
        p.cheap = True
        return p
    args = _cap(module, args)
    if "--help" in args:
        p.cheap = True
    elif module == "benchmarks.harness" and sub == "run":
        args = args if "--dry-run" in args else [*args, "--dry-run"]
        p.cheap = True
    elif module == "benchmarks.harness" and sub == "report":
        args = ["report", "--help"]
        p.cheap = True
    elif module in ("benchmarks.harness", "benchmarks.evaluate") and sub == "list":
        p.cheap = True
    elif module == "datasets" and sub in ("prepare", "info"):
        p.cheap = True
    elif module.endswith(".train"):
        key = "resume" if "--resume" in args else module
        args = [*args, *TINY[key].split()]
        p.cheap = "--dry-run" in args
    elif module in TINY:
        args = [*args, *TINY[module].split()]
        p.cheap = "--dry-run" in args
    p.argv = [python, "-m", module, *args]
    return p
