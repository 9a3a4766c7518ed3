"""Score exported samples against a data set: ``python -m benchmarks.evaluate --help``.

::

    python -m benchmarks.evaluate --samples RUN/samples.npz --dataset cifar10-cars \\
        --metrics swd,msssim,ndb,fid --out RUN/metrics.json
    python -m benchmarks.evaluate list                       # metrics and what each needs
    # real-vs-real floor: a second real set plays the generator
    python -m benchmarks.evaluate --samples dataset:cifar10-cars:test --dataset cifar10-cars \\
        --split train --out floors.json
    python -m benchmarks.evaluate --samples dataset:stacked-mnist:test --dataset stacked-mnist \\
        --split test --data-root $DATA_DIR/mnist --out floors.json   # disjoint halves

Python API (what the harness calls)::

    from benchmarks.evaluate import evaluate_images
    result = evaluate_images(images_u8, dataset="cifar10-cars", metrics=["swd", "fid"])

The result is a flat dict of numbers whose keys name the protocol, plus ``protocol``
(per metric: N, reference set, extractor and weights hash, parameters, ``seconds``),
``skipped`` (metric -> reason) and ``evaluation`` (what was scored against what).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.metrics import DEFAULT_METRICS, METRICS
from benchmarks.metrics.base import (
    EvalContext,
    MetricCache,
    MetricSkipped,
    ReferenceSet,
    check_images,
    reference_from_array,
)
from gancore.config import (
    add_dataclass_arguments,
    build_config,
    format_config,
    overrides_from_namespace,
)
from gancore.errors import UserError, run_cli
from gancore.hardware import describe
from gancore.helptext import DefaultsHelpFormatter
from gancore.io import atomic_write_json

SELECTION = "numpy.random.default_rng([0, 5]).permutation(count); first n"


@dataclass
class EvalOptions:
    """Protocol parameters of every metric (defaults = the published protocols)."""

    swd_n: int = field(default=16384, metadata={"help": "SWD images per set (ProGAN: 16384)"})
    msssim_pairs: int = field(default=10000, metadata={"help": "MS-SSIM pairs (uses 2x images)"})
    inception_n: int = field(default=5000, metadata={"help": "generated images for FID/KID/IS"})
    inception_ref_n: int = field(default=50000, metadata={"help": "max reference images, FID/KID"})
    kid_subsets: int = field(default=100, metadata={"help": "KID subsets (torch-fidelity default)"})
    kid_subset_size: int = field(default=1000, metadata={"help": "KID subset size (capped at N)"})
    isc_splits: int = field(default=10, metadata={"help": "Inception score splits"})
    prc_n: int = field(default=5000, metadata={"help": "images per set for precision/recall"})
    modes_n: int = field(
        default=26000, metadata={"help": "samples for mode counting (papers: 26k)"}
    )
    classifier_split: str | None = field(
        default=None, metadata={"help": "split the digit classifier trains on (default: --split)"}
    )
    domain_n: int = field(
        default=10000,
        metadata={"help": "images per set (generated and real) for fd/kid/prc_domain"},
    )
    ndb_n: int = field(default=20000, metadata={"help": "generated images for NDB"})
    ndb_ref_n: int = field(default=50000, metadata={"help": "max real images for the NDB bins"})
    ndb_k: int | None = field(
        default=None, metadata={"help": "NDB bins (default clip(N_real//500,10,100))"}
    )
    ndb_res: int = field(default=32, metadata={"help": "NDB pixel features downsampled to this"})
    birthday_s: int = field(default=1000, metadata={"help": "birthday-paradox batch size s"})
    birthday_batches: int = field(default=10, metadata={"help": "max disjoint batches of s"})
    birthday_res: int = field(
        default=64, metadata={"help": "birthday pixel features max resolution"}
    )
    birthday_dup_factor: float = field(
        default=0.5,
        metadata={"help": "duplicate = closer than this x the closest pair among s real images"},
    )
    seed: int = field(default=0, metadata={"help": "seed of SWD patches/directions and k-means"})
    inception_weights: str | None = field(
        default=None,
        metadata={
            "help": "InceptionV3 weights .pth (torch-fidelity format); env GANBENCH_INCEPTION_WEIGHTS"
        },
    )
    vgg_weights: str | None = field(
        default=None,
        metadata={"help": "VGG16 weights .pth (torchvision format); env GANBENCH_VGG16_WEIGHTS"},
    )
    device: str = field(
        default="auto",
        metadata={"help": "feature extractor device", "choices": ["auto", "cpu", "cuda"]},
    )
    batch: int = field(default=64, metadata={"help": "feature extraction batch size"})
    artifact_dir: str | None = field(
        default=None,
        metadata={"help": "where images such as the birthday pairs PNG go (default: beside --out)"},
    )

    def validate(self) -> None:
        for name in (
            "swd_n",
            "msssim_pairs",
            "inception_n",
            "inception_ref_n",
            "kid_subsets",
            "kid_subset_size",
            "isc_splits",
            "prc_n",
            "modes_n",
            "domain_n",
            "ndb_n",
            "ndb_ref_n",
            "ndb_res",
            "birthday_s",
            "birthday_batches",
            "birthday_res",
            "batch",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 < self.birthday_dup_factor <= 1:
            raise ValueError(
                f"birthday_dup_factor must be in (0, 1], got {self.birthday_dup_factor}"
            )
        if self.ndb_k is not None and self.ndb_k < 2:
            raise ValueError(f"ndb_k must be at least 2, got {self.ndb_k}")
        if self.seed < 0:  # numpy's default_rng refuses negative seeds deep inside a metric
            raise ValueError(f"seed must be 0 or more, got {self.seed}")


def dataset_reference(
    dataset: str, data_root: str | None, split: str, res: int, cache_dir: str | None = None
) -> ReferenceSet:
    """The real images of ``dataset``/``split`` at ``res``, in a fixed shuffled order."""
    from datasets import prepare

    ds = prepare(dataset, data_root=data_root, cache_dir=cache_dir, max_res=res, split=split)
    array = ds.array(res)
    order = np.random.default_rng([0, 5]).permutation(ds.count)
    sha = str(ds.manifest.get("arrays", {}).get(str(res), {}).get("sha256", ""))[:16]
    identity = {
        "name": dataset,
        "split": split,
        "res": res,
        "count": ds.count,
        "selection": SELECTION,
        "data_sha256_16": sha,
    }
    return ReferenceSet(array, order, identity)


def parse_metrics(metrics: str | Sequence[str] | None) -> list[str]:
    if metrics is None or metrics == "all":
        return list(DEFAULT_METRICS)
    names = [
        m.strip()
        for m in (metrics.split(",") if isinstance(metrics, str) else metrics)
        if m.strip()
    ]
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise UserError(
            f"unknown metric(s) {unknown}; available: {', '.join(METRICS)} "
            "(`python -m benchmarks.evaluate list` says what each needs)"
        )
    return names


def evaluate_images(
    images: np.ndarray,
    dataset: str | None = None,
    *,
    data_root: str | None = None,
    split: str = "train",
    metrics: str | Sequence[str] | None = None,
    reference: ReferenceSet | np.ndarray | None = None,
    options: EvalOptions | None = None,
    cache_dir: str | None = None,
    use_cache: bool = True,
    progress: bool = True,
    strict: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    """Score uint8 NHWC ``images`` with ``metrics`` against ``dataset``/``split`` (or an explicit
    ``reference``). ``overrides`` set :class:`EvalOptions` fields. With ``strict=False`` a
    metric that fails with a :class:`UserError` is recorded under ``skipped`` instead of raising."""
    check_images(images, "samples")
    names = parse_metrics(metrics)
    opts = options or EvalOptions()
    if overrides:
        opts = build_config(EvalOptions, None, None, {**opts.__dict__, **overrides})
    res = int(images.shape[1])
    if isinstance(reference, np.ndarray):
        reference = reference_from_array(reference, name=dataset or "array")
    elif reference is None and dataset is not None:
        reference = dataset_reference(dataset, data_root, split, res, cache_dir)
    ctx = EvalContext(
        images=images,
        reference=reference,
        options=opts,
        cache=MetricCache(cache_dir, enabled=use_cache),
        dataset=dataset,
        data_root=data_root,
        split=split,
        progress=progress,
    )
    result: dict[str, Any] = {}
    protocol: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name in names:
        t0 = time.perf_counter()
        try:
            out = METRICS[name].load()(ctx)
        except MetricSkipped as exc:
            skipped[name] = str(exc)
            _say(progress, f"{name:10s} skipped: {exc}")
            continue
        except UserError as exc:
            if strict:
                raise
            skipped[name] = f"error: {exc}"
            _say(progress, f"{name:10s} failed: {exc}")
            continue
        seconds = time.perf_counter() - t0
        result.update(out.values)
        protocol[name] = {**out.protocol, "seconds": round(seconds, 3)}
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in out.values.items())
        _say(progress, f"{name:10s} {seconds:7.1f} s  {shown}")
    result["protocol"] = protocol
    result["skipped"] = skipped
    result["evaluation"] = {
        "dataset": dataset,
        "split": split,
        "res": res,
        "channels": int(images.shape[3]),
        "n_samples": int(len(images)),
        "metrics": names,
        "reference": reference.identity if reference is not None else None,
        "options": {k: v for k, v in opts.__dict__.items()},
    }
    return result


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _say(enabled: bool, text: str) -> None:
    if enabled:
        print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------- CLI
def list_metrics() -> str:
    lines = ["available metrics (default: all; Inception/VGG ones are skipped without weights):"]
    for spec in METRICS.values():
        lines += [
            f"  {spec.name:10s} {spec.summary}",
            f"  {'':10s} needs: {spec.needs}",
            f"  {'':10s} keys:  {spec.keys}",
        ]
    return "\n".join(lines)


def real_samples(
    spec: str,
    dataset: str | None,
    data_root: str | None,
    split: str,
    res: int,
    cache_dir: str | None,
    limit: int | None = None,
) -> tuple[np.ndarray, dict[str, Any], ReferenceSet | None]:
    """``dataset:NAME:SPLIT`` -> (images, description, reference override).

    When NAME/SPLIT are the reference's own data set and split, the fixed shuffled order is cut
    into two disjoint halves: the reference takes the first, the "samples" the second."""
    parts = spec.split(":")
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise UserError(
            f"--samples {spec!r}: write real samples as dataset:NAME:SPLIT, "
            "e.g. dataset:cifar10-cars:test"
        )
    name, sample_split = parts[1], parts[2]
    full = dataset_reference(name, data_root, sample_split, res, cache_dir)
    if name == dataset and sample_split == split:
        half = len(full) // 2
        ref = ReferenceSet(full.array, full.order[:half], {**full.identity, "part": "first half"})
        rest = ReferenceSet(full.array, full.order[half:], {**full.identity, "part": "second half"})
        images, desc = rest.subset(min(len(rest), limit or len(rest)))
        return images, desc, ref
    images, desc = full.subset(min(len(full), limit or len(full)))
    return images, desc, None


def check_cli_arguments(ns: argparse.Namespace, names: list[str], artifact_dir: str | None) -> None:
    """Refuse flags that cannot work before any metric runs (an evaluation can take an hour:
    an unwritable --out must not be found at the end)."""
    if not names:
        raise UserError("--metrics is empty; name at least one metric, or use 'all'.")
    if ns.max_samples is not None and ns.max_samples < 1:
        raise UserError(
            f"--max-samples must be 1 or more, got {ns.max_samples}; leave it out to use "
            "every sample."
        )
    if ns.res < 4 or ns.res & (ns.res - 1):
        raise UserError(
            f"--res must be a power of two >= 4 (the resolution real 'samples' are read at), "
            f"got {ns.res}."
        )
    if ns.out is not None:
        check_writable_file("--out", ns.out)
    if artifact_dir is not None:
        check_writable_dir("--artifact-dir", artifact_dir)


def check_writable_file(flag: str, value: str) -> None:
    """``value`` names a file this process can create or replace (checked without writing it)."""
    if not value.strip():
        raise UserError(f"{flag} is empty; give a file path such as runs/x/metrics.json.")
    path = Path(value)
    if path.is_dir():
        raise UserError(
            f"{flag} {path} is a folder; give a file path such as {path / 'metrics.json'}."
        )
    check_writable_dir(flag, str(path.parent), shown=path)


def check_writable_dir(flag: str, value: str, shown: Path | None = None) -> None:
    """``value`` is, or can become, a folder this process can write in (nothing is created)."""
    shown = shown or Path(value)
    folder = Path(value or ".").absolute()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{flag} {shown}: {existing} is a file, not a folder; choose another path.")
    try:  # a probe file, deleted at once: the only check that is right for root, ACLs, ro mounts
        fd, probe = tempfile.mkstemp(prefix=".ganbench-probe-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(
            f"{flag} {shown}: cannot write in {existing} ({exc.strerror or exc}); choose a "
            "writable path."
        ) from exc


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.evaluate",
        description="Score exported samples (samples.npz) or a real split against a data set.\n"
        "python -m benchmarks.evaluate list lists the metrics and the keys each one writes.",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument(
        "--samples",
        help="samples.npz from a model's sample CLI, or dataset:NAME:SPLIT "
        "for a real-vs-real floor (same NAME and SPLIT as the reference: disjoint halves)",
    )
    p.add_argument(
        "--dataset", help="reference data set name, as python -m datasets prepare takes it"
    )
    p.add_argument(
        "--data-root",
        default=None,
        help="where the data set's source files are (not needed for the built-in digits sets)",
    )
    p.add_argument("--split", default="train", help="reference split")
    p.add_argument(
        "--real-vs-real",
        action="store_true",
        help="floor mode: samples are --dataset's --split-b, reference its --split-a",
    )
    p.add_argument("--split-a", default="train", help="reference split in --real-vs-real")
    p.add_argument("--split-b", default="test", help="'samples' split in --real-vs-real")
    p.add_argument("--res", type=int, default=32, help="resolution of real 'samples' (dataset:...)")
    p.add_argument(
        "--max-samples",
        type=int,
        default=None,
        help="use only the first N samples (default: all of them)",
    )
    p.add_argument("--metrics", default="all", help="comma-separated metric names, or all")
    p.add_argument("--out", help="result JSON (written atomically); printed when omitted")
    p.add_argument(
        "--cache-dir",
        default=None,
        help="cache root; reference features go under metrics/ (default: $GANBENCH_CACHE, else "
        "~/.cache/ganbench)",
    )
    p.add_argument("--no-cache", action="store_true", help="recompute reference statistics")
    p.add_argument(
        "--keep-going",
        action="store_true",
        help="record a metric's user error under 'skipped' and go on",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-metric lines")
    p.add_argument("--dry-run", action="store_true", help="print the resolved options and exit")
    add_dataclass_arguments(p, EvalOptions, group_title="metric protocol options")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["list"]:
        print(list_metrics())
        return 0
    ns = build_parser().parse_args(argv)
    opts = build_config(EvalOptions, None, None, overrides_from_namespace(ns, EvalOptions))
    if ns.real_vs_real:
        if not ns.dataset:
            raise UserError("--real-vs-real needs --dataset")
        ns.samples, ns.split = f"dataset:{ns.dataset}:{ns.split_b}", ns.split_a
    names = parse_metrics(ns.metrics)
    check_cli_arguments(ns, names, opts.artifact_dir)
    if ns.out and opts.artifact_dir is None:
        opts.artifact_dir = str(Path(ns.out).resolve().parent)
    if ns.dry_run:
        print(format_config(opts))
        print(f"metrics: {names}; samples: {ns.samples}; dataset: {ns.dataset} ({ns.split})")
        return 0
    if not ns.samples:
        raise UserError("--samples is required (a samples.npz or dataset:NAME:SPLIT)")
    reference = None
    if ns.samples.startswith("dataset:"):
        images, desc, reference = real_samples(
            ns.samples, ns.dataset, ns.data_root, ns.split, ns.res, ns.cache_dir, ns.max_samples
        )
    else:
        from gancore.samples import load_samples

        images, _, meta = load_samples(ns.samples)
        desc = {"path": str(ns.samples), "meta": meta}
    if ns.max_samples is not None:
        images = images[: ns.max_samples]
    result = evaluate_images(
        images,
        ns.dataset,
        data_root=ns.data_root,
        split=ns.split,
        metrics=names,
        reference=reference,
        options=opts,
        cache_dir=ns.cache_dir,
        use_cache=not ns.no_cache,
        progress=not ns.quiet,
        strict=not ns.keep_going,
    )
    result["evaluation"]["samples"] = desc
    # package versions (torch, tensorflow, torch-fidelity, ...) and the constraints file's hash
    result["evaluation"]["software"] = describe()
    if ns.out:
        try:
            atomic_write_json(ns.out, result)
        except OSError as exc:  # e.g. the disk filled up during the evaluation
            raise UserError(f"cannot write --out {ns.out}: {exc}; choose another path.") from exc
        print(f"wrote {ns.out}", file=sys.stderr)
        for proto in result.get("protocol", {}).values():  # artefacts such as the birthday PNG
            for key, value in proto.items() if isinstance(proto, dict) else ():
                if key.endswith("_png") and value:
                    print(f"wrote {value}", file=sys.stderr)
    else:
        import json

        print(json.dumps(result, indent=2, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
