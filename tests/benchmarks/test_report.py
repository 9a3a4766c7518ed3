"""Report builder on synthetic run directories: tables, aggregation, marking, HTML, CSV, JSON."""

from __future__ import annotations

import csv
import json
import statistics
from html.parser import HTMLParser

import pytest

from benchmarks.report import build_report
from gancore.io import atomic_write_json
from tests.benchmarks.harness_fakes import metrics_file, tiny_profile, write_run

MODELS = {"dcgan": {"batch": 4}, "sndcgan": {"batch": 4}, "progan": {"preset": "quick"}}
# swd per (model, framework, seed): ProGAN torch is best; dcgan-tf-s1 failed.
SWD = {
    ("dcgan", "torch"): (9.0, 11.0),
    ("dcgan", "tf"): (10.0, None),
    ("sndcgan", "torch"): (6.0, 8.0),
    ("sndcgan", "tf"): (7.0, 7.5),
    ("progan", "torch"): (3.0, 4.0),
    ("progan", "tf"): (3.5, 4.5),
}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    prof = tiny_profile(name="synthetic", seeds=2, models=MODELS)
    runs = tmp / "runs"
    for (model, fw), values in SWD.items():
        for seed, swd in enumerate(values):
            run_dir = runs / f"{model}-{fw}-s{seed}"
            if swd is None:
                write_run(
                    run_dir,
                    model,
                    fw,
                    seed,
                    None,
                    state="failed",
                    error="CUDA out of memory in D at 16x16",
                )
                continue
            skipped = {
                "fid": "no InceptionV3 weights at ~/.cache (offline): pass --inception-weights"
            }
            write_run(
                run_dir,
                model,
                fw,
                seed,
                metrics_file(swd, 0.1 + swd / 100, skipped=skipped),
                curve={1.0: metrics_file(swd * 2, 0.2)},
                img_per_s={16: 200.0 if fw == "torch" else 100.0},
            )
    atomic_write_json(
        runs / "_floor" / "res-16" / "metrics.json",
        {"swd_16k_avg": 1.25, "msssim_10k_pairs": 0.0513, "protocol": {}, "skipped": {}},
    )
    atomic_write_json(runs / "hardware.json", {"cpu": "FakeCPU 3000", "cpu_count": 2})
    out = build_report(prof, runs, tmp / "reports")
    return out, runs


def test_all_four_files_are_written(report):
    out, _ = report
    for kind in ("md", "html", "csv", "json"):
        assert out[kind].exists() and out[kind].stat().st_size > 0
    assert (out["md"].parent / "plots" / "curve_swd_16k_avg.png").exists()
    assert (out["md"].parent / "plots" / "losses.png").exists()


def test_summary_has_mean_std_over_seeds_and_best_marked(report):
    out, _ = report
    md = out["md"].read_text()
    summary = md.split("## Summary")[1].split("\n## ")[0]
    row = next(line for line in summary.splitlines() if line.startswith("| ProGAN (PyTorch)"))
    sd = statistics.stdev([3.0, 4.0])
    assert f"3.5 ± {sd:.4g} (n=2)" in row
    assert f"**3.5 ± {sd:.4g} (n=2)**" in row  # lowest SWD is best
    dc_tf = next(line for line in summary.splitlines() if line.startswith("| DCGAN (TensorFlow)"))
    assert "10 (n=1)" in dc_tf and "1/2 finished" in dc_tf
    assert "**" not in dc_tf
    # floor and published rows with their notes
    assert "floor: real vs real (16px)" in summary and "1.25" in summary
    assert "published: DCGAN — VEEGAN" in summary
    assert "NOT comparable" in summary


def test_msssim_best_is_closest_to_real(report):
    out, _ = report
    summary = out["md"].read_text().split("## Summary")[1].split("\n## ")[0]
    # msssim = 0.1 + swd/100: ProGAN torch (0.135) is closest to the real 0.0513
    row = next(line for line in summary.splitlines() if line.startswith("| ProGAN (PyTorch)"))
    assert row.count("**") == 4  # both columns bold


def test_failed_run_is_a_row_with_its_error(report):
    out, _ = report
    md = out["md"].read_text()
    assert "dcgan-tf-s1" in md and "CUDA out of memory in D at 16x16" in md
    rows = list(csv.DictReader(out["csv"].open()))
    failed = next(r for r in rows if r["row"] == "dcgan-tf-s1")
    assert failed["state"] == "failed" and "out of memory" in failed["error"]
    assert failed["swd_16k_avg"] == ""  # never a made-up number
    ok = next(r for r in rows if r["row"] == "progan-torch-s1")
    assert float(ok["swd_16k_avg"]) == 4.0 and float(ok["img_per_s_16"]) == 200.0
    assert any(r["row"] == "real-vs-real-16" for r in rows)


def test_skipped_metrics_say_why(report):
    out, _ = report
    md = out["md"].read_text()
    assert "**fid** skipped: no InceptionV3 weights at ~/.cache (offline)" in md
    assert "Not requested by this profile: fid, kid, isc" in md


def test_speed_section_has_ratio(report):
    out, _ = report
    md = out["md"].read_text()
    speed = md.split("## Speed")[1].split("\n## ")[0]
    assert "2.00x" in speed  # 200 img/s torch vs 100 img/s tf


def test_results_json_round_trips_the_numbers(report):
    out, _ = report
    data = json.loads(out["json"].read_text())
    run = next(r for r in data["runs"] if r["name"] == "sndcgan-tf-s1")
    assert run["metrics"]["swd_16k_avg"] == 7.5 and "log" not in run
    assert [p["kimg"] for p in run["curve"]] == [1.0, 2.0]
    assert data["floors"]["16"]["metrics"]["swd_16k_avg"] == 1.25
    assert any(not f["verified"] for f in data["published"])


class _Html(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.ids, self.tables = [], set(), 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if "id" in a:
            self.ids.add(a["id"])
        self.tables += tag == "table"


def test_html_is_self_contained_with_every_section(report):
    out, runs = report
    p = _Html()
    p.feed(out["html"].read_text())
    assert p.imgs and all(src.startswith("data:image/png;base64,") for src in p.imgs)
    for section in (
        "summary",
        "mode-collapse-and-diversity",
        "speed",
        "curves",
        "samples",
        "all-metrics",
        "all-runs",
        "published-figures",
        "protocol",
    ):
        assert section in p.ids, section
    assert p.tables >= 6
    # final grids of all 11 finished+failed runs that wrote one, plus ProGAN growth (3 res x 2)
    assert len(p.imgs) >= 12 + 6
    # markdown references copies inside the report folder, never the run folders
    md = out["md"].read_text()
    assert "](images/" in md and str(runs) not in md.split("Run directories")[1].split("\n")[1:][0]


def test_growth_sequence_orders_by_kimg(report):
    out, _ = report
    md = out["md"].read_text()
    growth = md.split("ProGAN growth sequence: progan-torch-s0")[1].split("\n\n")[1]
    assert (
        growth.index("4x4, end of stabilize")
        < growth.index("8x8")
        < growth.index("16x16, end of training")
    )


def test_cifar_cars_published_rows_say_not_comparable(tmp_path):
    prof = tiny_profile(
        name="cars", dataset="cifar10-cars", models={"dcgan": {"batch": 4}}, frameworks=["torch"]
    )
    m = {"fid_5k": 55.0, "is_5k": 5.0, "protocol": {"fid": {"n": 5000}}, "skipped": {}}
    write_run(tmp_path / "runs" / "dcgan-torch-s0", "dcgan", "torch", 0, m)
    out = build_report(prof, tmp_path / "runs", tmp_path / "reports")
    md = out["md"].read_text()
    summary = md.split("## Summary")[1].split("\n## ")[0]
    assert "published: DCGAN — TTUR paper (Heusel et al. 2017) (unverified)" in summary
    assert "37.7 (unverified)" in summary
    assert "all ten classes on lossless pixels" in summary and "NOT comparable" in summary
    # no floor was run: the report says nothing invented about it
    assert "floor: real vs real" not in summary


def test_null_metric_is_no_estimate_not_missing(tmp_path):
    """The birthday metric writes null when it finds no duplicate: say so, never invent a value."""
    prof = tiny_profile(name="nul", models={"dcgan": {"batch": 4}}, frameworks=["torch"])
    m = metrics_file(swd=3.0, msssim=0.1)
    m["birthday_support_s1k"] = None
    m["birthday_dup_pairs_s1k"] = 0
    write_run(tmp_path / "runs" / "dcgan-torch-s0", "dcgan", "torch", 0, m)
    md = build_report(prof, tmp_path / "runs", tmp_path / "reports")["md"].read_text()
    row = next(
        line
        for line in md.splitlines()
        if "birthday_support_s1k" in md
        and line.startswith("| DCGAN (PyTorch)")
        and "no estimate" in line
    )
    assert "not computed by this evaluation" not in row
