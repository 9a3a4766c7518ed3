"""Report builder on synthetic run directories: the first screen (sentences computed from the
numbers, grids, plot), the 2x2 design, aggregation, marking, HTML (also in Chromium), CSV, JSON."""

from __future__ import annotations

import copy
import csv
import json
import math
import shutil
import statistics
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from benchmarks.report import build_report, kinds
from benchmarks.report import keys as K
from benchmarks.report.collect import collect, speed_by_res
from benchmarks.report.design import design_table
from benchmarks.report.findings import findings
from gancore.grid import save_grid
from gancore.io import atomic_write_json
from tests.benchmarks.harness_fakes import (
    DESIGN_KINDS,
    design_metrics,
    design_profile,
    metrics_file,
    tick_record,
    tiny_profile,
    write_plan,
    write_run,
)

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


def _section(md: str, heading: str) -> str:
    return md.split(f"## {heading}\n")[1].split("\n## ")[0]


def test_results_have_mean_std_over_seeds_and_best_marked(report):
    out, _ = report
    md = out["md"].read_text()
    summary = _section(md, "Results")
    row = next(line for line in summary.splitlines() if line.startswith("| ProGAN (PyTorch)"))
    sd = statistics.stdev([3.0, 4.0])
    assert f"**3.50 ± {sd:.2g}**" in row  # lowest SWD is best; spread in 2 digits, mean to match
    dc_tf = next(line for line in summary.splitlines() if line.startswith("| DCGAN (TensorFlow)"))
    assert "10 (1 of 2 seeds)" in dc_tf  # a missing seed is said; a complete one is not
    assert "**" not in dc_tf
    assert "(n=" not in md  # the seed count is said once per table, not in every cell
    assert "Seeds: 2 seeds (0, 1)" in summary
    # floor and published rows with their notes
    assert "floor: real vs real (16px)" in summary and "1.25" in summary
    assert "published: DCGAN — VEEGAN" in summary
    assert "NOT comparable" in summary


def test_msssim_best_is_closest_to_real(report):
    out, _ = report
    summary = _section(out["md"].read_text(), "Results")
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
    speed = _section(md, "Speed and compute")
    assert "2.00x" in speed  # 200 img/s torch vs 100 img/s tf
    assert "median" not in speed  # one tick per resolution has no median to speak of
    assert "warmup_s" in speed


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
        "at-a-glance",
        "the-2x2-design",
        "results",
        "speed-and-compute",
        "mode-collapse-and-diversity-how-to-read-them",
        "curves",
        "growth-and-the-other-seeds-samples",
        "all-metrics",
        "setup",
        "all-runs",
        "published-figures",
        "protocol",
    ):
        assert section in p.ids, section
    assert p.tables >= 6
    # seed 0's final grids + the reals on the first screen, seed 1's below, ProGAN growth (3 x 2)
    assert len(p.imgs) >= 7 + 6 + 6
    # markdown references copies inside the report folder, never the run folders
    md = out["md"].read_text()
    assert "](images/" in md and str(runs) not in md.split("Run directories")[1].split("\n")[1:][0]


def test_growth_sequence_orders_by_kimg(report):
    out, _ = report
    md = out["md"].read_text()
    growth = md.split("Growth sequence: progan-torch-s0")[1].split("\n\n")[1]
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
    summary = _section(md, "Results")
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


# ----------------------------------------------------------------- the 2x2 design, compute budget
# (modes, fd, msssim, birthday support, kimg shown at 28 TFLOP). DCGAN PyTorch collapsed to 6
# modes yet has the lowest FD: it must never be marked best. ProGANs: no birthday estimate.
DESIGN = {
    ("dcgan", "torch"): (6, 5.0, 0.4, 4288.0, 30.0),
    ("dcgan", "tf"): (300, 40.0, 0.09, 9000.0, 30.0),
    ("sndcgan", "torch"): (500, 20.0, 0.07, 12000.0, 18.0),
    ("sndcgan", "tf"): (480, 22.0, 0.072, 11000.0, 18.0),
    ("progan", "torch"): (700, 12.0, 0.06, None, 42.0),
    ("progan", "tf"): (690, 13.0, 0.061, None, 42.0),
    ("sn-progan", "torch"): (760, 10.0, 0.055, None, 40.0),
    ("sn-progan", "tf"): (780, 9.5, 0.054, None, 40.0),
}
TFLOP = 28.0
MAGENTA = 255, 0, 255  # the final grids' colour: findable in a screenshot


def _design_runs(runs: Path, seeds: int = 1, values=None) -> None:
    values = values or {k: [v] * seeds for k, v in DESIGN.items()}
    prof = design_profile(seeds=seeds, tflop=TFLOP)
    kimg = {}
    for (kind, fw), per_seed in values.items():
        for seed, (modes, fd, ms, support, shown) in enumerate(per_seed):
            name = f"{kind}-{fw}-s{seed}"
            write_run(
                runs / name,
                kind,
                fw,
                seed,
                design_metrics(modes, fd, ms, support),
                kimg=shown,
                res=32,
                tflop=TFLOP,
                img_per_s={32: 400.0 if fw == "torch" else 200.0},
            )
            save_grid(
                runs / name / "samples" / "final.png",
                np.full((16, 32, 32, 3), MAGENTA, np.uint8),
                upscale_to=256,
            )
            kimg[name] = shown
    write_plan(runs, prof, kimg)
    # The floor's NDB ran with K = 10 (another K than the models' 20), and its own MS-SSIM is
    # far from the real-pair value the runs report: neither may steer the models' columns.
    atomic_write_json(
        runs / "_floor" / "res-32" / "metrics.json",
        {
            "ndb_k10": 1.0,
            "msssim_2k_pairs": 0.2,
            "fd_digits_2k": 0.8,
            "protocol": {},
            "skipped": {},
        },
    )
    atomic_write_json(runs / "hardware.json", {"cpu": "FakeCPU", "cpu_count": 2, "torch": "2.x"})
    return prof


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("design")
    prof = _design_runs(tmp / "runs")
    out = build_report(prof, tmp / "runs", tmp / "reports")
    return out, collect(prof, tmp / "runs")


def _columns(md_section: str, first: str) -> list[str]:
    line = next(x for x in md_section.splitlines() if x.startswith(f"| {first} |"))
    return [c.strip() for c in line.strip("|").split(" | ")]


def _row(md_section: str, label: str) -> list[str]:
    line = next(x for x in md_section.splitlines() if x.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split(" | ")]


def test_first_section_holds_the_sentences_the_grids_and_the_plot(design):
    out, _ = design

    class Sections(HTMLParser):
        def __init__(self):
            super().__init__()
            self.depth, self.first, self.done, self.seen_table = 0, [], False, False

        def handle_starttag(self, tag, attrs):
            if tag == "table" and not self.done:
                self.seen_table = True
            if tag == "section" and not self.done:
                self.depth += 1
            elif self.depth and not self.done:
                self.first.append((tag, dict(attrs)))

        def handle_endtag(self, tag):
            if tag == "section" and self.depth:
                self.depth, self.done = 0, True

    p = Sections()
    p.feed(out["html"].read_text())
    assert not p.seen_table, "a table comes before the first screen"
    tags = [t for t, _ in p.first]
    assert tags.count("li") >= 7  # one sentence per question
    imgs = [a for t, a in p.first if t == "img"]
    # 4 models x 2 frameworks + the real images, then the headline plot
    assert sum("Real images" in a["alt"] for a in imgs) == 1
    assert sum("· PyTorch" in a["alt"] or "· TensorFlow" in a["alt"] for a in imgs) == 8
    assert len(imgs) == 10
    md = out["md"].read_text()
    first = md.split("\n## ")[1]
    assert first.startswith("At a glance") and "|" not in first.split("**Final samples")[0]
    assert "plots/headline.png" in first and "reals.png" in first


def test_sentences_answer_each_question_from_the_numbers(design):
    _, results = design
    text = " ".join(findings(results))
    assert "equal training compute (28 TFLOP per model)" in text
    # coverage: SN-ProGAN TF 780 is best, 2.60x its framework's DCGAN (300)
    assert "best SN-ProGAN (TensorFlow) 780, 2.60x the plain DCGAN's 300" in text
    assert "Collapsed (< 10 modes): DCGAN (PyTorch)" in text
    # quality: the collapsed DCGAN's FD of 5 is not "best"
    assert "best SN-ProGAN (TensorFlow) 9.5 vs the plain DCGAN's 40 (-76%)" in text
    # SN-ProGAN vs DCGAN, means over frameworks: (760+780)/2 = 770 vs (6+300)/2 = 153
    rel = (770 - 153) / 153
    missed = ((1000 - 770) - (1000 - 153)) / (1000 - 153)
    assert f"770 vs 153 modes ({rel:+.0%}; PyTorch {(760 - 6) / 6:+.0%}" in text
    assert f"modes missed 230 vs 847: {abs(missed):.1%} less mode collapse than DCGAN" in text
    assert "one seed: no spread to compare against" in text
    assert "DCGAN -294" in text  # PyTorch - TensorFlow modes for DCGAN: 6 - 300


def test_changing_a_number_changes_the_sentences(design):
    _, results = design
    before = findings(results)
    changed = copy.deepcopy(results)
    run = next(r for r in changed["runs"] if r["name"] == "sn-progan-tf-s0")
    run["metrics"]["modes_covered_2k"] = 500.0
    after = findings(changed)
    assert before != after
    text = " ".join(after)
    # the best is now SN-ProGAN PyTorch (760) against its DCGAN (6: collapsed but nonzero)
    assert f"best SN-ProGAN (PyTorch) 760, {760 / 6:.2f}x the plain DCGAN's 6" in text
    assert "630 vs 153 modes" in text  # (760 + 500) / 2
    assert "the rankings differ" in text  # TF now ranks ProGAN (690) above SN-ProGAN (500)


def test_the_plain_dcgan_as_best_is_not_compared_with_itself(design):
    _, results = design
    changed = copy.deepcopy(results)
    for r in changed["runs"]:
        if r["name"] == "dcgan-tf-s0":
            r["metrics"]["modes_covered_2k"] = 990.0
    text = " ".join(findings(changed))
    assert "best DCGAN (TensorFlow) 990, ahead of SN-ProGAN (TensorFlow) at 780" in text
    assert "the plain DCGAN's 990" not in text


def test_2x2_effects_are_arithmetic_on_the_table(design):
    out, results = design
    table = _section(out["md"].read_text(), "The 2x2 design")
    cols = _columns(table, "model")
    col = cols.index("TensorFlow: modes_covered_2k")
    value = {m: float(_row(table, m)[col]) for m in ("DCGAN", "SN-DCGAN", "ProGAN", "SN-ProGAN")}
    effects = {
        "spectral norm, without growing (SN-DCGAN − DCGAN)": ("SN-DCGAN", "DCGAN"),
        "spectral norm, with growing (SN-ProGAN − ProGAN)": ("SN-ProGAN", "ProGAN"),
        "growing, without spectral norm (ProGAN − DCGAN)": ("ProGAN", "DCGAN"),
        "growing, with spectral norm (SN-ProGAN − SN-DCGAN)": ("SN-ProGAN", "SN-DCGAN"),
    }
    for label, (to, frm) in effects.items():
        cell = _row(table, f"*effect of {label}*")[col]
        delta = value[to] - value[frm]
        assert cell.startswith(f"{delta:+g} ({delta / value[frm]:+.0%})"), (label, cell)
    # and the sentences quote the same differences, PyTorch / TensorFlow
    sn = next(s for s in findings(results) if s.startswith("**Spectral norm**"))
    assert "without growing (DCGAN → SN-DCGAN) modes +494 / +180 (better)" in sn
    assert "FD +15 / -18 (mixed)" in sn  # collapsed DCGAN PyTorch had FD 5


def test_no_best_mark_on_degenerate_values(design):
    out, _ = design
    results_md = _section(out["md"].read_text(), "Results")
    cols = _columns(results_md, "model (framework)")
    dc = _row(results_md, "DCGAN (PyTorch)")
    assert not any("**" in c for c in dc)  # collapsed: lowest FD, yet never "best"
    assert "6 (collapsed)" in dc[cols.index("modes_covered_2k")]
    fd = cols.index("fd_digits_2k")
    assert _row(results_md, "SN-ProGAN (TensorFlow)")[fd] == "**9.5**"
    bd = cols.index("birthday_support_s100")
    rows = [x for x in results_md.splitlines() if x.startswith("| ")][2:]
    assert not any("**" in r.strip("|").split(" | ")[bd] for r in rows)
    assert "birthday_support_s100: no best marked, a run has no estimate (null)" in results_md


def test_floor_values_of_another_k_stay_out_of_the_models_columns(design):
    out, _ = design
    md = out["md"].read_text()
    results_md = _section(md, "Results")
    cols = _columns(results_md, "model (framework)")
    floor = _row(results_md, "*floor: real vs real (32px)*")
    ndb = floor[cols.index("ndb_k20")]
    assert "1" not in ndb.split("(")[0] and "another N or K" in ndb
    assert floor[cols.index("fd_digits_2k")] == "0.8"  # the same key: in the column
    floor_table = md.split("**Real-vs-real floor (every key it wrote)**")[1]
    assert "ndb_k10 | 1 | another N or K than the models' ndb_k20: not comparable" in floor_table


def test_msssim_best_is_measured_against_the_real_pair_value(design):
    out, _ = design
    results_md = _section(out["md"].read_text(), "Results")
    cols = _columns(results_md, "model (framework)")
    ms = cols.index("msssim_2k_pairs")
    # real pairs 0.05: SN-ProGAN TF (0.054) is closest; against the floor's 0.2 it would be
    # DCGAN TF (0.09)
    assert _row(results_md, "SN-ProGAN (TensorFlow)")[ms] == "**0.054**"
    assert "**" not in _row(results_md, "DCGAN (TensorFlow)")[ms]
    assert "closest to the real-pair value msssim_real_2k_pairs = 0.05" in results_md


def test_compute_table_gives_gflop_per_image_and_why(design):
    out, _ = design
    speed = _section(out["md"].read_text(), "Speed and compute")
    sn = _row(speed, "sndcgan-torch-s0")
    assert sn[1:4] == ["18", "28", f"{TFLOP / 18:.4g}"]  # kimg, TFLOP, GFLOP per image
    assert (
        f"SN-DCGAN costs {(TFLOP / 18) / (TFLOP / 42):.2f}x the GFLOP per image of ProGAN" in speed
    )
    assert "equal training compute: 28 TFLOP per model" in speed


def test_protocol_names_the_domain_extractor_and_versions(design):
    out, _ = design
    protocol = _section(out["md"].read_text(), "Protocol")
    assert "**digits** classifier, held-out accuracy 97.00%, weights sha256 0123456789abcdef" in (
        protocol
    )
    assert "not comparable with Inception FID" in protocol
    assert "Training budget, the axis every comparison is made on: equal training compute" in (
        protocol
    )
    assert "torch: 2.x" in protocol


def test_protocol_states_each_models_reason_and_the_evaluation_points(design):
    from benchmarks.report.document import Bullets
    from benchmarks.report.protocol import protocol_section

    _, results = design
    r = copy.deepcopy(results)
    r["profile"]["models"][0]["why"] = "EMA of G, because the averaged weights sample better"
    r["profile"]["eval_kimg"] = []
    items = [i for b in protocol_section(r) if isinstance(b, Bullets) for i in b.items]
    name = r["profile"]["models"][0]["name"]
    assert f"Why {name} trains this way: EMA of G, because" in " ".join(items)
    assert sum(i.startswith("Why ") for i in items) == 1  # the others gave no reason
    assert any("no intermediate evaluations (the final checkpoint only)" in i for i in items)
    r["profile"]["eval_kimg"] = [5.0, 10.0]
    items = [i for b in protocol_section(r) if isinstance(b, Bullets) for i in b.items]
    assert any("intermediate evaluations at 5, 10 kimg." in i for i in items)


def test_several_seeds_give_mean_std_and_a_spread_verdict(tmp_path):
    values = {}
    for (kind, fw), (modes, fd, ms, sup, shown) in DESIGN.items():
        values[(kind, fw)] = [(modes, fd, ms, sup, shown), (modes + 10, fd + 1, ms, sup, shown)]
    # SN-DCGAN: the frameworks differ by far more than their seed spread
    values[("sndcgan", "tf")] = [(300, 22.0, 0.07, 1.0, 18.0), (302, 23.0, 0.07, 1.0, 18.0)]
    prof = _design_runs(tmp_path / "runs", seeds=2, values=values)
    results = collect(prof, tmp_path / "runs")
    t = design_table(results, ["modes_covered_2k"])
    cell = t.rows[kinds.ORDER.index("progan")].cells[2].text  # PyTorch column
    assert cell == f"705.0 ± {statistics.stdev([700, 710]):.2g}"  # mean to the spread's place
    text = " ".join(findings(results))
    se2 = 2 * math.sqrt(
        statistics.stdev([500, 510]) ** 2 / 2 + statistics.stdev([300, 302]) ** 2 / 2
    )
    within, beyond = text.split("within seed spread")[1].split("beyond seed spread")
    assert f"SN-DCGAN (+204, 2 SE = {se2:.2g})" in beyond.split(";")[0]
    assert "ProGAN (+10, 2 SE = 14)" in within  # sqrt(50/2 + 50/2) * 2 = 14.1


def test_speed_is_weighted_by_timed_seconds():
    log = [
        tick_record(kimg=1.0, res=8, img_per_s=100.0, tick_s=10.0, warmup_s=0.0),
        tick_record(kimg=2.0, res=8, img_per_s=200.0, tick_s=30.0, warmup_s=10.0),
        tick_record(kimg=3.0, res=16, img_per_s=50.0, tick_s=5.0, warmup_s=5.0),
    ]
    speed = speed_by_res(log)
    assert speed[8] == pytest.approx((100 * 10 + 200 * 20) / 30)
    assert speed[16] == 50.0  # a tick of warm-up only still reports its rate


def test_domain_metric_keys_have_their_own_families():
    assert K.family("fd_digits_10k") == "fd" and K.direction("fd_digits_10k") == K.LOWER
    assert K.is_headline("fd_cifar10cls_5k")
    assert K.family("kid_digits_10k_mean") == "kid_domain"
    assert K.family("kid_5k_mean") == "kid"
    assert K.family("kid_digits_10k_std") is None
    assert K.family("precision_cifar10cls_5k") == "precision_domain"
    assert K.family("recall_digits_10k") == "recall_domain"
    assert K.family("prc_f_score_digits_10k") == "prc_f_domain"
    assert K.family("precision_5k") == "precision" and K.family("prc_f_score_5k") == "prc_f"
    assert K.sort_keys(["swd_2k_avg", "fid_5k", "fd_digits_2k"])[0] == "fd_digits_2k"


def test_birthday_strip_is_wide_captioned_and_labelled(tmp_path):
    from PIL import Image

    from benchmarks.metrics.birthday import save_pairs_png

    imgs = np.zeros((12, 32, 32, 3), np.uint8)
    imgs[:, :, :16] = 255
    pairs = [(0, 1, 0.001)] + [(2 * i, 2 * i + 1, 5.0 + i) for i in range(1, 6)]
    save_pairs_png(tmp_path / "p.png", imgs, pairs, "Closest pairs, a caption", threshold=0.5)
    im = np.asarray(Image.open(tmp_path / "p.png").convert("RGB"))
    assert im.shape[1] >= 512
    red = (im[..., 0] > 150) & (im[..., 1] < 60) & (im[..., 2] < 60)
    assert red.sum() > 20  # the duplicate pair's label is drawn in red
    dark_top = (im[:20].min(axis=-1) < 100).sum()
    assert dark_top > 20  # the caption strip holds text


def test_first_screen_in_a_real_browser(design, tmp_path):
    """Chromium renders the report; the first 1400x1000 screen shows the sample grids."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from PIL import Image

    out, _ = design
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--screenshot={shot}",
            "--window-size=1400,1000",
            out["html"].resolve().as_uri(),
        ],
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert shot.exists(), "chromium wrote no screenshot"
    im = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    magenta = (im[..., 0] > 200) & (im[..., 1] < 60) & (im[..., 2] > 200)
    # eight grids of at least ~120 px a side in view
    assert magenta.sum() > 8 * 120 * 120 * 0.5


def test_stacked_reports_show_each_colour_channel_as_grey_digits(design, tmp_path):
    from PIL import Image as PILImage

    out, _ = design
    md = out["md"].read_text()
    section = _section(md, "Digits per colour channel")
    rows = [x for x in section.splitlines() if x.startswith("| ![")]
    assert len(rows) == 3  # red, green, blue
    assert "red channel" in rows[0] and "blue channel" in rows[2]
    # real images first, then every model of the first framework
    assert rows[0].count("![") == 1 + len(DESIGN_KINDS)
    first = rows[0].split("](")[1].split(")")[0]
    with PILImage.open(out["md"].parent / first) as im:
        assert im.mode == "L"  # grey
    # the magenta grids (255, 0, 255): red and blue planes white, green black
    red = next(p for p in section.split("](")[1:] if "dcgan-torch-s0__red" in p.split(")")[0])
    green = next(p for p in section.split("](")[1:] if "dcgan-torch-s0__green" in p.split(")")[0])
    with PILImage.open(out["md"].parent / red.split(")")[0]) as im:
        assert im.getextrema()[1] == 255
    with PILImage.open(out["md"].parent / green.split(")")[0]) as im:
        assert im.getextrema()[1] == 0


def test_other_data_sets_have_no_channel_section(tmp_path):
    from benchmarks.report.channels import channel_panel

    results = {"profile": {"dataset": "cifar10-cars"}, "runs": []}
    assert channel_panel(results, tmp_path) is None


def test_a_key_with_no_estimate_for_some_runs_is_not_a_headline():
    """Birthday support is null when no duplicate pair was found (support too large to
    estimate): it cannot rank such runs, so it must not name a 'best' model."""
    from benchmarks.report.headline import picks

    def run(support, fd):
        return {
            "state": "finished",
            "metrics": {"birthday_support_s1k": support, "fd_cifar10cls_5k": fd},
        }

    results = {"runs": [run(None, 80.0), run(None, 145.0), run(1.2e6, 571.0)]}
    p = picks(results)
    assert p["coverage"] is None and p["quality"] == "fd_cifar10cls_5k"
    from benchmarks.report.findings import coverage_sentence, quality_sentence

    text = coverage_sentence(results, None)
    assert "no key ranks every model" in text and "birthday_support_s1k" in text
    assert "birthday" not in quality_sentence(results, None)
    results = {"runs": [run(3.0e5, 80.0), run(1.2e6, 571.0)]}
    assert picks(results)["coverage"] == "birthday_support_s1k"
