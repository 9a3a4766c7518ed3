"""Where feature-extractor weights come from, without ever surprising an offline machine.

Order of preference for each network (first hit wins):

1. a path given by flag / option (``--inception-weights``, ``--vgg-weights``);
2. the environment variable (``GANBENCH_INCEPTION_WEIGHTS``, ``GANBENCH_VGG16_WEIGHTS``);
3. the file torch-fidelity / torchvision would download, if already in the torch hub cache;
4. a download into that cache -- only if ``GANBENCH_OFFLINE`` is not set and a 2-second
   socket check reaches the host, so an offline machine gives up at once.

When none works the metric raises :class:`MetricSkipped` with the reason; the evaluator
reports it under ``skipped`` (never as 0, never as a crash). A path that is given but does not
exist is a user error, not a skip. Files are checked with ``torch.load(weights_only=True)``
before torch-fidelity (which loads with ``weights_only=False``) sees them.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from benchmarks.metrics.base import MetricSkipped, file_sha256
from gancore.errors import UserError

# torch-fidelity 0.4's URL_INCEPTION_V3: the TF 2015-12-05 FID Inception, converted to PyTorch.
INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
# torchvision's VGG16_Weights.IMAGENET1K_V1, what torch-fidelity's "vgg16" extractor loads.
VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"


@dataclass(frozen=True)
class WeightSpec:
    extractor: str  # torch-fidelity feature extractor name
    flag: str
    env: str
    url: str


INCEPTION = WeightSpec(
    "inception-v3-compat", "--inception-weights", "GANBENCH_INCEPTION_WEIGHTS", INCEPTION_URL
)
VGG16 = WeightSpec("vgg16", "--vgg-weights", "GANBENCH_VGG16_WEIGHTS", VGG16_URL)


def offline() -> bool:
    return os.environ.get("GANBENCH_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def host_reachable(url: str, timeout: float = 2.0) -> bool:
    """A TCP connect to the download host; False within ``timeout`` seconds when offline."""
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _hub_path(url: str) -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


_CHECKED: dict[tuple[str, float, int], str] = {}  # (path, mtime, size) -> sha256_16


def _check_loadable(path: Path, spec: WeightSpec) -> None:
    """Load once with weights_only=True (refuses pickled code); remembered per file version."""
    import torch

    st = path.stat()
    if (str(path), st.st_mtime, st.st_size) in _CHECKED:
        return
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickle with code, not a torch file at all
        raise UserError(
            f"{path} is not a plain PyTorch state dict for {spec.extractor} "
            f"({type(exc).__name__}: {exc}); pass the right file with {spec.flag}."
        ) from exc
    if not isinstance(state, dict):
        raise UserError(
            f"{path} holds a {type(state).__name__}, not a state dict for {spec.extractor}."
        )
    _CHECKED[(str(path), st.st_mtime, st.st_size)] = file_sha256(path)


def _sha(path: Path) -> str:
    st = path.stat()
    return _CHECKED.get((str(path), st.st_mtime, st.st_size)) or file_sha256(path)


def resolve_weights(spec: WeightSpec, explicit: str | os.PathLike | None) -> tuple[Path, dict]:
    """Path to usable weights and a protocol note ``{"source", "path", "sha256_16"}``."""
    for source, value in (("flag", explicit), ("env", os.environ.get(spec.env))):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                how = spec.flag if source == "flag" else f"${spec.env}"
                raise UserError(
                    f"{spec.extractor} weights file {path} (from {how}) does not exist."
                )
            _check_loadable(path, spec)
            return path, {"source": source, "path": str(path), "sha256_16": _sha(path)}
    cached = _hub_path(spec.url)
    if not cached.is_file():
        hint = f"pass {spec.flag} PATH or set {spec.env}"
        if offline():
            raise MetricSkipped(f"no {spec.extractor} weights and GANBENCH_OFFLINE is set; {hint}")
        if not host_reachable(spec.url):
            raise MetricSkipped(
                f"no {spec.extractor} weights and {urlparse(spec.url).hostname} is "
                f"unreachable (offline?); {hint}"
            )
        import torch.hub

        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(spec.url, str(cached), progress=True)
        except Exception as exc:  # network errors come in many types
            raise MetricSkipped(f"downloading {spec.url} failed ({exc}); {hint}") from exc
    _check_loadable(cached, spec)
    return cached, {
        "source": "torch-hub-cache",
        "path": str(cached),
        "url": spec.url,
        "sha256_16": _sha(cached),
    }
