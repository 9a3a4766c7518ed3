"""Training throughput of DCGAN / SN-DCGAN in both frameworks, on random data.

    python -m vanilla_gan.bench --res 32 --batch 64 [--models dcgan,sndcgan]
        [--frameworks torch,tf] [--steps 20] [--warmup 3] [--width 64] [--threads 0]

Each model x framework is measured in its own subprocess (torch and tensorflow
never share a process), with the model's preset (same widths in both
frameworks), random uint8 images and the real training step (n_dis D updates +
one G update), after ``--warmup`` untimed steps (tracing, cudnn autotuning).
Prints images/s (real images shown to D per second) and the torch/tf ratio.
``tf`` follows ``--jit-compile`` (unset by default, as in training: XLA on a GPU, the plain
graph on a CPU); ``tf-graph`` is the same step without XLA and ``tf-xla`` with it, whatever
``--jit-compile`` says (``--frameworks tf-xla,tf-graph`` compares the two interleaved);
``tf-graph-opbn`` and ``tf-xla-fusedbn`` swap BatchNorm's form (op by op / TF's fused kernel)
in each, to measure that choice. ``--frameworks torch,tf,torch-ref`` adds a
pytorch/examples-style loop on the same networks (``_ReferenceTrainer``), so the comparison
with that example is made on the same machine under the same load. ``torch-convs`` and
``tf-graph-convs`` are ``torch`` and ``tf-graph`` with ``--no-cpu-gemm-convs`` (the framework's
own convolutions for every layer, vanilla_gan/torch_gemm.py), so that switch is measured
interleaved with the default: ``--frameworks torch,torch-convs,tf-graph,tf-graph-convs``.

The reference is pytorch/examples' DCGAN (ngf = ndf = 64, batch 64); compare the ratios
measured in one session, never absolute figures from another machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

if __package__ in (None, ""):  # `python bench.py` from inside vanilla_gan/
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from gancore.errors import UserError, run_cli
from gancore.hardware import MALLOC_MODES, bench_cpus, cpu_seconds, malloc_state, pinned_to
from gancore.helptext import DefaultsHelpFormatter
from vanilla_gan.config import MODELS, TrainConfig, preset_for


class _ReferenceTrainer:
    """A pytorch/examples-``dcgan``-style step, for a same-machine, same-load comparison.

    Written here (not copied) after the structure of that example's loop: NCHW, default
    ``zero_grad``, BCE-with-logits on real then fake with two backward calls, the fake
    batch reused for G, D weight gradients computed in the G step, and ``.item()`` host
    syncs every step (the example prints its losses every iteration). The networks are ours
    with torch's convolutions throughout; their activations run in place, as the example's.
    """

    def __init__(self, cfg: TrainConfig, channels: int) -> None:
        import torch

        from gancore.hardware import tune_malloc
        from gancore.torch_utils import resolve_device, set_threads
        from vanilla_gan import torch_nets

        set_threads(cfg.threads)
        tune_malloc(cfg.malloc)  # the same allocator setting as the trainers it is compared with
        self.torch, self.device = torch, resolve_device(cfg.device)
        torch.manual_seed(cfg.seed)
        # torch's own convolutions throughout, as the example's nn.Conv2d layers: VARIANTS'
        # torch-ref entry turns cpu_gemm_convs off (and the row records it from cfg).
        if cfg.cpu_gemm_convs:
            raise ValueError("the main.py-style loop runs with cpu_gemm_convs off")
        G, D = torch_nets.build_models(cfg, channels)
        self.G, self.D = G.to(self.device), D.to(self.device)
        kw = dict(lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
        self.opt_g = torch.optim.Adam(self.G.parameters(), **kw)
        self.opt_d = torch.optim.Adam(self.D.parameters(), **kw)
        self.crit = torch.nn.BCEWithLogitsLoss()

    def step(self, reals_u8: np.ndarray, labels, randoms: dict) -> None:
        torch = self.torch
        real = torch.from_numpy(reals_u8).to(self.device).permute(0, 3, 1, 2).float()
        real = (real / 127.5 - 1.0).contiguous()
        noise = torch.from_numpy(randoms["z"][0]).to(self.device)
        ones = torch.ones(len(real), device=self.device)
        self.D.zero_grad()
        err_real = self.crit(self.D(real), ones)
        err_real.backward()
        fake = self.G(noise)
        err_fake = self.crit(self.D(fake.detach()), torch.zeros_like(ones))
        err_fake.backward()
        self.opt_d.step()
        self.G.zero_grad()
        err_g = self.crit(self.D(fake), ones)
        err_g.backward()
        self.opt_g.step()
        return {"loss_d": (err_real + err_fake).item(), "loss_g": err_g.item()}


# Measured names -> (trainer framework, its config overrides, its constructor's keyword
# arguments); torch-ref is torch's _ReferenceTrainer, fp32 with torch's convolutions throughout
# as main.py.
VARIANTS: dict[str, tuple[str, dict, dict]] = {
    "torch": ("torch", {}, {}),
    "tf": ("tf", {}, {}),
    "torch-ref": ("torch", {"amp": "off", "cpu_gemm_convs": False}, {}),
    "tf-graph": ("tf", {"jit_compile": False}, {}),
    "tf-xla": ("tf", {"jit_compile": True}, {}),
    "torch-convs": ("torch", {"cpu_gemm_convs": False}, {}),
    "tf-graph-convs": ("tf", {"jit_compile": False, "cpu_gemm_convs": False}, {}),
    # BatchNorm's other form: op by op in the plain graph, TF's fused kernel under XLA
    "tf-graph-opbn": ("tf", {"jit_compile": False}, {"fused_bn": False}),
    "tf-xla-fusedbn": ("tf", {"jit_compile": True}, {"fused_bn": True}),
}
# Pairs whose ratio is printed: (name, the name it is compared with, what the ratio measures)
PAIRS = (
    ("torch", "tf", "PyTorch against TensorFlow"),
    ("torch", "torch-ref", "against the main.py-style loop"),
    ("tf", "torch-ref", "against the main.py-style loop"),
    ("tf-graph", "torch-ref", "against the main.py-style loop"),
    ("tf-xla", "torch-ref", "against the main.py-style loop"),
    ("torch", "torch-convs", "the matrix-multiply convolutions"),
    ("tf-graph", "tf-graph-convs", "the matrix-multiply convolutions"),
    ("tf-graph", "tf-xla", "the plain graph against XLA"),
    ("tf-graph", "tf-graph-opbn", "the fused BatchNorm in the plain graph"),
    ("tf-xla", "tf-xla-fusedbn", "the op-by-op BatchNorm under XLA"),
)


def _worker(spec: dict) -> dict:
    """Measure one model x framework in this process; returns a result dict."""
    values = preset_for(spec["model"])
    framework, overrides, trainer_kwargs = VARIANTS[spec["framework"]]
    values.update(
        framework=framework,
        res=spec["res"],
        batch=spec["batch"],
        width=spec["width"],
        threads=spec["threads"],
        malloc=spec["malloc"],
        device=spec["device"],
        jit_compile=spec["jit_compile"],
        xla_legacy_cpu_runtime=spec.get("xla_legacy_cpu_runtime", True),
        channels_last=spec["channels_last"],
        amp=spec["amp"],
    )
    values.update(overrides)
    cfg = TrainConfig(**values)
    cfg.validate()
    if spec["framework"] == "torch-ref":
        Trainer = _ReferenceTrainer
    elif cfg.framework == "torch":
        from vanilla_gan.torch_training import TorchTrainer as Trainer
    else:
        from vanilla_gan.tf_training import TFTrainer as Trainer
    trainer = Trainer(cfg, 3, **trainer_kwargs)
    rng = np.random.default_rng(0)
    reals = rng.integers(0, 256, (cfg.n_dis * cfg.batch, cfg.res, cfg.res, 3), dtype=np.uint8)
    randoms = {"z": rng.standard_normal((cfg.n_dis, cfg.batch, cfg.z_dim), dtype=np.float32)}
    for _ in range(spec["warmup"]):
        trainer.step(reals, None, randoms)  # every step returns its losses: synced
    c0, t0 = cpu_seconds(), time.perf_counter()
    for _ in range(spec["steps"]):
        trainer.step(reals, None, randoms)
    dt = time.perf_counter() - t0
    busy = (cpu_seconds() - c0) / dt
    return {
        **spec,
        # What the trainer really used (XLA applies to TF only; tf-graph turns it off).
        "jit_compile": trainer.jit_compile if cfg.framework == "tf" else None,
        "fused_bn": trainer.fused_bn if cfg.framework == "tf" else None,
        # The switch as set (its paths apply on a CPU in fp32, and in TF only without XLA).
        "cpu_gemm_convs": cfg.cpu_gemm_convs,
        "xla_flags": os.environ.get("XLA_FLAGS", "") if cfg.framework == "tf" else None,
        "img_per_s": spec["steps"] * cfg.batch * cfg.n_dis / dt,
        "seconds": dt,
        "cores_busy": busy,  # the process's CPU seconds / wall seconds over the timed steps
        "device_used": str(getattr(trainer, "device", "tf")),
        "malloc_used": malloc_state(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m vanilla_gan.bench",
        description=(
            "Training images/s of DCGAN / SN-DCGAN in PyTorch and TF/Keras on random data."
        ),
        formatter_class=DefaultsHelpFormatter,
    )
    ap.add_argument("--res", type=int, default=32, help="resolution")
    ap.add_argument("--batch", type=int, default=64, help="minibatch size")
    ap.add_argument("--models", default="dcgan,sndcgan", help="comma list of models")
    ap.add_argument(
        "--frameworks",
        default="torch,tf",
        help="comma list of frameworks: torch, tf, torch-ref (pytorch/examples-style loop), "
        "tf-graph / tf-xla (tf without / with XLA, whatever --jit-compile says), "
        "tf-graph-opbn / tf-xla-fusedbn (the same with BatchNorm's other form: op by op, TF's "
        "fused kernel), torch-convs / tf-graph-convs "
        "(torch / tf-graph with --no-cpu-gemm-convs: the framework's convolutions everywhere)",
    )
    ap.add_argument("--steps", type=int, default=20, help="timed training steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--width", type=int, default=64, help="base width (ngf = ndf)")
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="N > 0: each measurement's process uses N threads and is pinned to N CPUs; 0: "
        "the frameworks' defaults, unpinned (rows record the cores each process kept busy)",
    )
    ap.add_argument(
        "--malloc",
        default="tuned",
        choices=MALLOC_MODES,
        help="the CPU allocator setting of every implementation measured, torch-ref included "
        "(the trainers' --malloc)",
    )
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="device")
    ap.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="tf: XLA-compile the step, or not (--no-jit-compile: plain graph); unset: the "
        "training default, XLA on a GPU and the plain graph on a CPU (each row records the "
        "choice)",
    )
    ap.add_argument(
        "--xla-legacy-cpu-runtime",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="tf + XLA on TF 2.21: XLA's older CPU runtime (the training default)",
    )
    ap.add_argument("--no-channels-last", action="store_true", help="torch: NCHW memory format")
    ap.add_argument(
        "--amp",
        default="off",
        choices=("off", "bf16", "auto"),
        help="mixed precision of our trainers (the training flag's policy); the reference loop is fp32",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every model x framework this many times, interleaved (round 1 of all, "
        "then round 2 ...), and compare medians: evens out a shared machine's drift",
    )
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(_worker(json.loads(args.worker))), flush=True)
        return 0
    models = [m for m in args.models.split(",") if m]
    frameworks = [f for f in args.frameworks.split(",") if f]
    known = tuple(VARIANTS)
    bad = [m for m in models if m not in MODELS] + [f for f in frameworks if f not in known]
    if bad:
        raise UserError(f"unknown model/framework {bad}; models {MODELS}, frameworks {known}")
    if args.rounds < 1:
        raise UserError(f"--rounds must be >= 1, got {args.rounds}")
    if args.json:
        from gancore.io import output_file

        output_file(args.json, "--json", "bench.json")  # before the timing, not after it
    results = []
    # Each measurement runs in its own process; rounds interleave (all of round 1, then 2 ...).
    for rnd, model, fw in (
        (r, m, f) for r in range(args.rounds) for m in models for f in frameworks
    ):
        spec = dict(
            model=model,
            framework=fw,
            cpus=bench_cpus(args.threads),
            res=args.res,
            batch=args.batch,
            width=args.width,
            threads=args.threads,
            malloc=args.malloc,
            device=args.device,
            jit_compile=args.jit_compile,
            xla_legacy_cpu_runtime=args.xla_legacy_cpu_runtime,
            channels_last=not args.no_channels_last,
            amp=args.amp,
            steps=args.steps,
            warmup=args.warmup,
        )
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        proc = subprocess.run(
            [sys.executable, "-m", "vanilla_gan.bench", "--worker", json.dumps(spec)],
            capture_output=True,
            text=True,
            env=env,
            # --threads N: pinned to N CPUs (gancore.hardware.pinned_to says why)
            preexec_fn=pinned_to(spec["cpus"]) if spec["cpus"] else None,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not line:
            print(f"{model}/{fw}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        res = {**json.loads(line[-1][7:]), "round": rnd}
        results.append(res)
        print(
            f"{model:8s} {fw:14s} res {args.res} batch {args.batch} width {args.width}: "
            f"{res['img_per_s']:8.1f} img/s, {res['cores_busy']:.2f} cores busy"
            + (f"  (round {rnd + 1})" if args.rounds > 1 else ""),
            flush=True,
        )
    rates: dict[str, dict[str, list[float]]] = {}
    for r in results:
        rates.setdefault(r["model"], {}).setdefault(r["framework"], []).append(r["img_per_s"])
    medians = {m: {fw: float(np.median(v)) for fw, v in by.items()} for m, by in rates.items()}
    for model, by_fw in medians.items():
        if args.rounds > 1:
            print(f"{model}: median img/s " + ", ".join(f"{k} {v:.1f}" for k, v in by_fw.items()))
        for a, b, what in PAIRS:
            if a in by_fw and b in by_fw:
                print(f"{model}: {a}/{b} = {by_fw[a] / by_fw[b]:.2f} ({what})")
    if args.json:
        from gancore.hardware import code_version, describe
        from gancore.io import atomic_write_json

        atomic_write_json(
            args.json,
            {
                "results": results,
                "median_img_per_s": medians,
                "rounds": args.rounds,
                "hardware": describe(),
                "code": code_version(),
            },
        )
        print(f"wrote {args.json}")
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(run_cli(main))
