"""Every benchmark command checks its ``--json`` path before it times anything (a bad path
found after a ten-minute measurement would lose it): one-line errors from
``gancore.io.output_file``, nothing measured."""

from __future__ import annotations

import importlib

import pytest

from gancore.errors import UserError

BENCHES = {  # module -> the smallest arguments it accepts up to the --json check
    "progan_torch.bench": ["--max-res", "8", "--fmap-base", "64", "--fmap-max", "8"],
    "progan_common.bench_frameworks": ["--max-res", "8", "--fmap-base", "64", "--fmap-max", "8"],
    "progan_torch.bench_reference": ["--res", "4", "--max-res", "8", "--channels", "8"],
    "vanilla_gan.bench": ["--models", "dcgan", "--frameworks", "torch"],
    "vanilla_gan.bench_reference": ["--no-peer", "--frameworks", "torch"],
}


@pytest.mark.parametrize("module", sorted(BENCHES))
def test_a_bad_json_path_is_refused_before_any_timing(module, tmp_path, monkeypatch):
    main = importlib.import_module(module).main
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    # nothing may be timed: the check comes first
    monkeypatch.setattr("time.perf_counter", lambda: pytest.fail(f"{module} timed something"))
    for path, message in (
        (tmp_path, "is a folder; give a file name"),
        (blocker / "x.json", "cannot create its folder"),
    ):
        with pytest.raises(UserError, match=message):
            main([*BENCHES[module], "--json", str(path)])
