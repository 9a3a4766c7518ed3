"""What the domain-feature distances cost: ``python -m benchmarks.metrics.bench_domain --help``.

Scores N generated images (real images with Gaussian noise, a stand-in for samples) against N
real ones with fd_domain, kid_domain and prc_domain, twice: a cold run (classifier from the
cache or trained now, reference features and statistics computed) and a warm run (what each
further model costs: the generated set's features and the distances). Prints wall seconds
per metric and the CPU seconds of each run (on a machine shared with other jobs, CPU seconds
divided by the core count is the better estimate of the wall time on an idle one). Nothing is
timed in the test suite; this script is where the figures come from.

::

    python -m benchmarks.metrics.bench_domain                       # stacked-digits, N = 10k
    python -m benchmarks.metrics.bench_domain --dataset cifar10-cars \\
        --data-root $DATA_DIR/cifar10-jpg.tar.gz --n 5000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings

import numpy as np

from gancore.errors import run_cli


def _run(images, reference, args, cache_dir: str) -> tuple[float, float, dict]:
    from benchmarks.evaluate import evaluate_images

    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = evaluate_images(
            images,
            args.dataset,
            data_root=args.data_root,
            reference=reference,
            metrics="fd_domain,kid_domain,prc_domain",
            cache_dir=cache_dir,
            progress=False,
            domain_n=args.n,
            device=args.device,
        )
    return time.perf_counter() - t0, time.process_time() - c0, out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.metrics.bench_domain")
    p.add_argument("--dataset", default="stacked-digits")
    p.add_argument("--data-root", default=None)
    p.add_argument("--n", type=int, default=10000, help="images per set (generated and real)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    p.add_argument(
        "--cache-dir",
        default=None,
        help="metric cache (default: a fresh temporary folder, so the cold run is really cold "
        "apart from the prepared data set and the classifier, which you can point it at)",
    )
    args = p.parse_args(argv)
    from benchmarks.evaluate import dataset_reference

    ref = dataset_reference(args.dataset, args.data_root, "train", 32, args.cache_dir)
    real, _ = ref.subset(min(args.n, len(ref)))
    noisy = real + np.random.default_rng(0).normal(0.0, 20.0, real.shape)
    gen = np.clip(noisy, 0, 255).round().astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache_dir or tmp
        for name in ("cold", "warm"):
            seconds, cpu, out = _run(gen, ref, args, cache)
            proto = out["protocol"]
            print(
                f"{name}: {seconds:.1f} s wall, {cpu:.1f} s CPU (all threads) in all "
                f"({args.dataset}, N = {proto['fd_domain']['n']}, "
                f"{proto['fd_domain']['feature_dim']}-d features)"
            )
            for metric in ("fd_domain", "kid_domain", "prc_domain"):
                m = proto[metric]
                print(
                    f"  {metric:10s} {m['seconds']:7.2f} s (features {m['seconds_features']:.2f} s"
                    f"; reference cached: {m['reference_cached']}; classifier trained "
                    f"{0.0 if m['classifier_cached'] else m['classifier_train_seconds']:.1f} s)"
                )
            keys = [k for k in out if k.startswith(("fd_", "kid_", "precision_", "recall_"))]
            print("  " + ", ".join(f"{k}={out[k]:.4g}" for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
