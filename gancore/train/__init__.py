"""The one training layer every trainer shares (framework-neutral).

- :mod:`gancore.train.stages`: where training is, as a function of images shown;
- :mod:`gancore.train.protocol`: the :class:`Trainer` interface a framework implements;
- :mod:`gancore.train.schema`: the run directory's records as dataclasses;
- :mod:`gancore.train.loop`: the loop (ticks, grids, snapshots, resume, non-finite policy,
  interrupts) -- the only writer of a run directory, with :mod:`gancore.train.session`;
- :mod:`gancore.train.cli`: the flags and config resolution every ``train`` CLI shares.
"""
