"""End to end: the `smoke` profile trains real tiny models through the real CLIs.

Part of `make test` (the smoke profile end to end through the real CLIs): every
model x framework trains, exports and is scored, about 5-6 minutes on the 2-core machine. It checks the whole chain: the
harness's argv matches the model CLIs, every run finishes and is scored, the
report is complete and self-contained, and a second invocation trains nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class _Imgs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.srcs.append(dict(attrs).get("src", ""))


def _harness(tmp_path: Path, timeout: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.harness",
            "run",
            "--profile",
            "smoke",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--reports-dir",
            str(tmp_path / "reports"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_smoke_profile_end_to_end(tmp_path):
    first = _harness(tmp_path, timeout=3600)
    results = json.loads((tmp_path / "reports" / "results.json").read_text())
    failed = {r["name"]: r.get("error") for r in results["runs"] if r["state"] != "finished"}
    assert not failed, f"runs failed: {failed}\n{first.stderr[-3000:]}"
    assert first.returncode == 0
    names = {r["name"] for r in results["runs"]}
    assert names == {
        f"{m}-{fw}-s0" for m in ("dcgan", "sndcgan", "progan") for fw in ("torch", "tf")
    }
    for r in results["runs"]:
        assert any(k.startswith("swd_") and k.endswith("_avg") for k in r["metrics"]), r["name"]
        assert len(r["curve"]) == 2, r["name"]  # the 0.2 kimg point and the final one
        assert r["final_grid"] is not None and r["img_per_s"], r["name"]
        if r["kind"] == "progan":
            assert [g["res"] for g in r["growth"]] == [4, 8, 16], r["name"]
    assert results["floors"]["16"]["metrics"], "real-vs-real floor missing"
    parser = _Imgs()
    parser.feed((tmp_path / "reports" / "report.html").read_text())
    assert len(parser.srcs) >= 6 and all(s.startswith("data:image/") for s in parser.srcs)

    # A second invocation finds everything finished: nothing retrains, nothing is re-scored.
    attempts = {
        n: len(json.loads((tmp_path / "runs" / n / "harness.json").read_text())["attempts"])
        for n in names
    }
    t0 = time.time()
    second = _harness(tmp_path, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stderr.count("finished earlier, skipped") == len(names)
    for n in names:
        rec = json.loads((tmp_path / "runs" / n / "harness.json").read_text())
        assert len(rec["attempts"]) == attempts[n]
    assert time.time() - t0 < 300
