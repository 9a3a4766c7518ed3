"""``python -m datasets prepare|info``: prepare a data set into the cache, or show a manifest."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from datasets.cache import MANIFEST, PreparedDataset, find_complete, find_unfinished
from datasets.integrity import damaged
from datasets.prepare import plan_prepare, prepare_report
from datasets.sources import NAMES
from gancore.errors import UserError, run_cli
from gancore.helptext import HelpFormatter

EPILOG = """data sets:
  cifar10, cifar10-cars, cifar10:CLASS,CLASS   CIFAR-10 (official python tarball, its extracted
                                               folder, or train/<class>/*.jpg, folder or .tar.gz)
  mnist, stacked-mnist                         MNIST IDX files (gz or not); stacked = 3 digits as RGB
  digits, stacked-digits                       scikit-learn's bundled 8x8 digits (no data needed)
  celeba                                       img_align_celeba folder (or .tar.gz): centre square crop
  celebahq                                     folder of square face images (up to 1024)
  folder:PATH                                  any folder (or .tar.gz) of images

examples ($DATA_DIR: the folder that holds your copies of the raw data files):
  python -m datasets prepare stacked-digits
  python -m datasets prepare cifar10-cars --data-root $DATA_DIR/cifar10-jpg.tar.gz
  python -m datasets prepare stacked-mnist --data-root $DATA_DIR/mnist --count 50000
  python -m datasets info cifar10-cars --data-root $DATA_DIR/cifar10-jpg.tar.gz
"""


def _add_source_args(p: argparse.ArgumentParser) -> None:
    from datasets.sources.digits import DEFAULT_STACKED_DIGITS_COUNT as stacked_digits_n
    from datasets.sources.mnist import DEFAULT_STACKED_MNIST_COUNT as stacked_mnist_n

    p.add_argument(
        "--data-root",
        default=None,
        help="where the source files are (folder, archive or file); without it, "
        "downloadable sets are fetched into <cache>/downloads",
    )
    p.add_argument(
        "--cache",
        "--cache-dir",
        dest="cache_dir",
        default=None,
        help="cache folder (default: $GANBENCH_CACHE, else $XDG_CACHE_HOME/ganbench "
        "or ~/.cache/ganbench)",
    )
    p.add_argument(
        "--max-res",
        type=int,
        default=32,
        help="highest resolution, a power of two >= 4; every power of two from 4 up "
        "is stored (default: 32)",
    )
    p.add_argument(
        "--split",
        choices=("train", "test"),
        default="train",
        help="which split to read (default: train)",
    )
    p.add_argument(
        "--count",
        type=int,
        default=None,
        help=f"stacked sets only: number of images (default: {stacked_mnist_n} for "
        f"stacked-mnist, {stacked_digits_n} for stacked-digits; each image takes about 4 KB "
        "of cache at 4x4 to 32x32)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="stacked sets only: seed of the digit triples (default: 0)",
    )
    p.add_argument(
        "--skip-small",
        action="store_true",
        help="skip images smaller than --max-res (listed in the manifest) instead of failing",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m datasets",
        description="Prepare a data set into the cache, or show a prepared data set's manifest.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "prepare",
        help="prepare a data set into the cache (instant when cached)",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument("name", help=f"data set name: {', '.join(NAMES)}")
    _add_source_args(p)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="say what would be prepared and where, without writing anything",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    i = sub.add_parser(
        "info",
        help="print the manifest of a prepared data set",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    i.add_argument(
        "target",
        help="a prepared cache folder, or a data set name (with the same flags used to prepare it)",
    )
    _add_source_args(i)
    i.add_argument("--verify", action="store_true", help="recompute every array's sha256")
    i.add_argument("--full", action="store_true", help="also list every skipped file")
    return parser


def _options(ns: argparse.Namespace) -> dict:
    return {"count": ns.count, "seed": ns.seed, "skip_small": ns.skip_small}


def cmd_prepare(ns: argparse.Namespace) -> int:
    rep = prepare_report(
        ns.name,
        ns.data_root,
        ns.cache_dir,
        ns.max_res,
        ns.split,
        verbose=not ns.quiet and not ns.dry_run,
        dry_run=ns.dry_run,
        **_options(ns),
    )
    spec = rep["spec"]
    if ns.dry_run:
        state = "already prepared" if rep["reused"] else "would be prepared"
        print(f"{spec.name} ({spec.split} split) from {spec.location}: {state} at {rep['path']}")
        for note in spec.notes:
            print(f"  note: {note}")
        return 0
    m = rep["dataset"].manifest
    verb = "found in cache" if rep["reused"] else "prepared"
    res = rep["dataset"].resolutions
    print(f"{verb}: {m['name']} ({m['split']} split, from {m['source']})")
    print(
        f"  images kept: {m['count']}  skipped: {m['skipped_count']} "
        f"(unreadable {m['unreadable_count']}, too small {m['too_small_count']})"
    )
    held = "" if res[-1] == m["max_res"] else f" (the cache holds up to {m['max_res']})"
    print(f"  channels: {m['channels']}  resolutions: {', '.join(map(str, res))}{held}")
    took = rep["seconds"] if rep["reused"] else m["prepare_seconds"]
    print(f"  time: {took:.2f} s  path: {rep['path']}")
    for note in m["notes"]:
        print(f"  note: {note}")
    return 0


def cmd_info(ns: argparse.Namespace) -> int:
    target = Path(ns.target).expanduser()
    if (target / MANIFEST).exists() or (target.is_dir() and any(target.glob("*.npy"))):
        ds = PreparedDataset(target)  # a cache folder given by path (says what is damaged)
    else:
        plan = plan_prepare(
            ns.target, ns.data_root, ns.cache_dir, ns.max_res, ns.split, **_options(ns)
        )
        found = find_complete(plan["cache"], plan["prefix"], ns.max_res)
        unfinished = find_unfinished(plan["cache"], plan["prefix"])
        if found is None and unfinished:
            raise damaged(unfinished[0], f"it has no {MANIFEST}")
        if found is None:
            raise UserError(
                f"{ns.target!r} is not prepared in {plan['cache']} yet; run "
                f"`python -m datasets prepare {ns.target} ...` with the same flags."
            )
        ds = PreparedDataset(found)
    m = dict(ds.manifest)
    if not ns.full and len(m.get("skipped", [])) > 20:
        m["skipped"] = m["skipped"][:20] + [f"... {len(m['skipped']) - 20} more (use --full)"]
    print(json.dumps(m, indent=2, sort_keys=True))
    print(f"path: {ds.path}")
    if ns.verify:
        bad = ds.verify()
        if bad:
            raise damaged(ds.path, f"checksum mismatch in {', '.join(bad)}")
        print("checksums: all arrays match the manifest")
    return 0


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    return cmd_prepare(ns) if ns.command == "prepare" else cmd_info(ns)


def entry(argv: list[str] | None = None) -> None:
    sys.exit(run_cli(main, argv))
