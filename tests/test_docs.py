"""The documentation keeps its promises: every documented shell command works (rules in
``tests/doc_commands.py``) and every command line's ``--help`` reads cleanly.

- ``test_doc_command_static``: each command names an existing CLI and only flags it knows,
  real-data paths exist, outputs go under ``runs/`` or ``reports/``;
- ``test_doc_file_cheap``: the cheap commands of each file (help, dry runs, listings,
  ``make -n``, preparing data sets) run, in order, in a temporary folder;
- ``test_doc_file_full`` (``slow``): every command of each file runs, with tiny sizes;
- ``test_cli_help_is_clean``: no reST markup, no "(default: None)", no internal references;
- ``test_trainers_share_their_flags``: the run-control and loop flags the READMEs promise in
  every trainer exist in each, with the same help text.

A failure names the Markdown file and line, the command as documented, how it was run and
the end of its output.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.doc_commands import (
    OUTPUT_FLAGS,
    REAL_DATA,
    ROOT,
    Block,
    DocCommand,
    Plan,
    all_blocks,
    flags_of,
    parse_blocks,
    plan,
)

BLOCKS = all_blocks()
COMMANDS = [c for b in BLOCKS for c in b.commands]
FILES: dict[str, list[Block]] = {}
for _block in BLOCKS:
    FILES.setdefault(_block.file, []).append(_block)
TIMEOUT_S = 600


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    paths = [extra.get("PYTHONPATH", ""), str(ROOT), env.get("PYTHONPATH", "")]
    env.update({k: v for k, v in extra.items() if k != "PYTHONPATH"})
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["GANBENCH_OFFLINE"] = "1"  # never try a download from a test
    return env


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv,
        cwd=cwd,
        env=_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def _failure(cmd: DocCommand, argv: list[str], cwd: Path, r) -> str:
    out = (r.stdout + r.stderr).strip().splitlines()
    return (
        f"{cmd.where}: documented command failed (exit {r.returncode})\n"
        f"  documented: {cmd.text}\n  ran as:     {shlex.join(argv)}\n  in:         {cwd}\n"
        + "\n".join("  | " + line for line in out[-25:])
    )


# Collects every CLI's --help (and each subcommand's) in ONE process: importing TensorFlow and
# torch once instead of once per CLI keeps the default test run short.
_HELP_SCRIPT = r"""
import contextlib, io, json, re, runpy, sys, traceback
def one(argv):
    buf = io.StringIO()
    sys.argv = [argv[0], *argv[1:], "--help"]
    try:
        with contextlib.redirect_stdout(buf):
            runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
        return "no --help exit: " + buf.getvalue()
    except SystemExit as exc:
        return buf.getvalue() if exc.code in (0, None) else f"--help exit {exc.code}"
    except BaseException:
        return "--help failed: " + traceback.format_exc()
out = {}
for module in json.loads(sys.argv[1]):
    out[module] = text = one([module])
    subs = re.search(r"\{([\w,-]+)\} \.\.\.", text.split("\n\n")[0])
    for sub in subs.group(1).split(",") if subs else []:
        out[f"{module} {sub}"] = one([module, sub])
print("\0" + json.dumps(out))
"""


@functools.lru_cache(maxsize=1)
def _all_help() -> dict[str, str]:
    modules = sorted(set(CLIS) | {p.cli[0] for p in map(plan, COMMANDS) if p.cli})
    modules = [m for m in modules if m not in ("make", "pytest")]
    argv = [sys.executable, "-c", _HELP_SCRIPT, json.dumps(modules)]
    r = _run(argv, ROOT, {})
    assert r.returncode == 0 and "\0" in r.stdout, f"collecting --help failed: {r.stderr[-3000:]}"
    return json.loads(r.stdout.rsplit("\0", 1)[1])


def help_text(module: str, sub: str | None) -> str:
    texts = _all_help()
    key = f"{module} {sub}" if sub and f"{module} {sub}" in texts else module
    text = texts.get(key)
    assert text is not None, f"no command line `python -m {module}`"
    assert not text.startswith(("--help failed", "--help exit", "no --help")), f"{key}: {text}"
    return text


def _is_plain_help(p: Plan) -> bool:
    """``python -m MODULE [SUB] --help`` as collected by :func:`help_text` already."""
    a = p.argv or []
    return p.cwd is None and not p.env and a[1:2] == ["-m"] and a[-1] == "--help" and len(a) <= 5


def execute(p: Plan, tmp: Path) -> None:
    cwd = p.cwd or tmp
    r = _run(p.argv, cwd, p.env)
    if r.returncode != 0:
        pytest.fail(_failure(p.command, p.argv, cwd, r), pytrace=False)
    if p.make_then:
        lines = [line for line in r.stdout.splitlines() if "-m benchmarks.harness" in line]
        assert lines, f"{p.command.where}: `{p.command.text}` does not expand to the harness"
        argv = shlex.split(lines[-1])
        argv = [sys.executable, *argv[1:], p.make_then]
        r = _run(argv, tmp, p.env)
        if r.returncode != 0:
            pytest.fail(_failure(p.command, argv, tmp, r), pytrace=False)


def run_file(blocks: list[Block], tmp: Path, cheap_only: bool) -> None:
    """Every command of one Markdown file, in order, in one folder (a reader follows a README
    from top to bottom: a sample after a train finds its run, an evaluation its samples)."""
    ran = 0
    for cmd in [c for b in blocks for c in b.commands]:
        p = plan(cmd)
        if p.skip or p.template or p.argv is None or (cheap_only and not p.cheap):
            continue
        if _is_plain_help(p):
            help_text(*p.cli)
        else:
            t0 = time.perf_counter()
            execute(p, tmp)
            print(f"{time.perf_counter() - t0:6.1f} s  {cmd.where}  {cmd.text}")
        ran += 1
    if ran == 0:
        pytest.skip("nothing in this file runs in this mode")


# ---------------------------------------------------------------- the rules, known answers


def test_parse_blocks_joins_continuations_and_drops_comments():
    text = (
        "intro\n```bash\n# a comment line\npython -m a.b --x 1 \\\n    --y 'two words'  # note\n"
        "\nmake bench\n```\n```python\nprint('not shell')\n```\n"
    )
    (block,) = parse_blocks(text, "X.md")
    assert block.line == 2
    assert [c.tokens for c in block.commands] == [
        ["python", "-m", "a.b", "--x", "1", "--y", "two words"],
        ["make", "bench"],
    ]
    assert [c.line for c in block.commands] == [4, 7]


def test_plan_rules_known_answers():
    def doc(text: str) -> Plan:
        return plan(DocCommand("X.md", 1, text, shlex.split(text)), python="PY")

    p = doc("python -m progan_torch.train --preset quick --kimg 160 --out runs/pg")
    assert p.argv[:6] == ["PY", "-m", "progan_torch.train", "--preset", "quick", "--kimg"]
    assert p.argv[p.argv.index("--max-res") + 1] == "32" and not p.cheap
    assert "--dry-run" in doc("torchrun --nproc_per_node 2 -m progan_torch.train --out r").argv
    assert doc("python -m vanilla_gan.sample --run r --n 10000 --out r/s.npz").argv[6] == "64"
    assert doc("python -m progan_torch.train --preset celebahq ...").template
    assert doc("python -m x --run RUN/samples.npz").template
    assert not doc("python -m datasets prepare stacked-digits").template
    assert doc("pip install --target /tmp/x pkg==1").skip
    p = doc("make bench PROFILE=smoke")
    assert p.argv[:4] == ["make", "-s", "-n", "-C"] and p.make_then == "--dry-run"
    assert doc("python -m benchmarks.harness run --profile smoke").argv[-1] == "--dry-run"
    p = doc("PYTHONPATH=/opt/x python -m progan_torch.bench_reference --steps 8")
    assert p.env == {"PYTHONPATH": "/opt/x"} and p.argv[-1] == "--help"
    assert doc("cd vanilla_gan && python train.py --help").cwd == ROOT / "vanilla_gan"


def test_docs_have_commands():
    files = {b.file for b in BLOCKS}
    assert {"README.md", "vanilla_gan/README.md", "progan_torch/README.md"} <= files
    assert len(COMMANDS) > 40


# ------------------------------------------------------------------ every documented command


@pytest.mark.parametrize("cmd", COMMANDS, ids=[c.where for c in COMMANDS])
def test_doc_command_static(cmd: DocCommand):
    p = plan(cmd)
    if p.skip and not p.needs_data:
        pytest.skip(p.skip)
    problems = []
    if p.cli and p.cli[0] == "make":
        makefile = (ROOT / "Makefile").read_text()
        if not re.search(rf"^{re.escape(p.cli[1] or '')}:", makefile, re.M):
            problems.append(f"no make target {p.cli[1]!r}")
        for var in [t.split("=")[0] for t in cmd.tokens[1:] if "=" in t]:
            if f"$({var})" not in makefile:
                problems.append(f"the Makefile ignores {var}")
    elif p.cli:
        text = help_text(*p.cli)
        for flag in flags_of(cmd.tokens):
            if not re.search(rf"(?<![\w-]){flag}(?![\w-])", text):
                problems.append(f"{' '.join(x for x in p.cli if x)} has no flag {flag}")
    for tok, value in zip(cmd.tokens, cmd.tokens[1:]):
        if tok in OUTPUT_FLAGS and not p.template and not re.match(r"(runs|reports)/", value):
            problems.append(f"{tok} {value} writes outside runs/ and reports/")
    if REAL_DATA.is_dir():
        for tok in cmd.tokens:
            path = tok.split("=", 1)[-1]
            real = REAL_DATA / path[len("$DATA_DIR") :].lstrip("/")
            if path.startswith("$DATA_DIR") and not real.exists():
                problems.append(f"{path} does not exist")
    if problems:
        pytest.fail(f"{cmd.where}: `{cmd.text}`:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.mark.parametrize("file", FILES)
def test_doc_file_cheap(file: str, tmp_path: Path):
    run_file(FILES[file], tmp_path, cheap_only=True)


@pytest.mark.slow
@pytest.mark.parametrize("file", FILES)
def test_doc_file_full(file: str, tmp_path: Path):
    run_file(FILES[file], tmp_path, cheap_only=False)


# ---------------------------------------------------------------------------- --help texts

TRAINERS = ("vanilla_gan.train", "progan_torch.train", "progan_tf.train")


def test_trainers_share_their_flags():
    """The READMEs promise the same run-control and loop flags, with the same meaning, in
    every trainer: each has them all, and each flag's help (without its default) is the same."""
    from gancore.train.cli import LOOP_FLAGS, RUN_FLAGS
    from progan_common.cli import build_train_parser
    from vanilla_gan.train import parser as vanilla_parser

    for module in TRAINERS:
        text = help_text(module, None)
        missing = [f for f in RUN_FLAGS + LOOP_FLAGS if not re.search(rf"(?<![\w-]){f}\b", text)]
        assert not missing, f"python -m {module} lacks {missing}"

    def helps(parser) -> dict[str, str]:
        return {
            a.option_strings[0]: re.sub(
                r"\s*\(default[:, ][^()]*(\([^()]*\)[^()]*)*\)$", "", a.help
            )
            for a in parser._actions
            if a.option_strings
        }

    vanilla, progan = helps(vanilla_parser()), helps(build_train_parser("p", ""))
    differ = [
        f"{f}:\n    vanilla_gan: {vanilla[f]}\n    progan:      {progan[f]}"
        for f in RUN_FLAGS + LOOP_FLAGS
        if f not in ("--preset", "--resume") and vanilla[f] != progan[f]  # those list their own
    ]
    assert not differ, "the same flag means different things:\n  " + "\n  ".join(differ)


def _cli_modules() -> list[str]:
    mods = []
    for path in sorted(ROOT.glob("*/**/*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in ("tests", ".venv", "build") or "__main__" not in path.read_text():
            continue
        if path.name == "__main__.py":
            mods.append(".".join(rel.parts[:-1]))
        elif re.search(r'^if __name__ == "__main__"', path.read_text(), re.M):
            mods.append(".".join(rel.with_suffix("").parts))
    return mods


CLIS = _cli_modules()
BAD_HELP = {
    "reST markup": r"``|:(class|mod|func|meth):`|^\s*::\s*$",
    "an empty default": r"\(default: None\)",
    "two defaults": r"\(default[: ][^()]*\)\s*\(default",
    "an internal reference": r"\bissue\b|DESIGN\.md|STYLE\.md|PROGAN_SPEC|/tmp/team|under construction",
}


@pytest.mark.parametrize("module", CLIS)
def test_cli_help_is_clean(module: str):
    texts = {k: v for k, v in _all_help().items() if k.split(" ")[0] == module}
    problems: list[str] = []
    for name, text in texts.items():
        help_text(*(name.split(" ") + [None])[:2])  # fails on a --help that does not work
        flat = re.sub(r"\s+", " ", text)
        for what, pattern in BAD_HELP.items():
            m = re.search(pattern, text if "::" in pattern else flat, re.M)
            if m:
                problems.append(f"{name} --help has {what}: {m.group(0).strip()!r}")
    assert not problems, "\n".join(problems)
