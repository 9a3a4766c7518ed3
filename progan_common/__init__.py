"""What both ProGAN implementations share, framework-neutral (imports neither torch nor TF).

- :mod:`progan_common.config`: :class:`ProGANConfig`, the one run configuration, and its presets;
- :mod:`progan_common.schedule`: the progressive schedule as a pure function of images shown;
- :mod:`progan_common.cli`: the train / sample command-line pieces both frameworks use.

``progan_torch`` and ``progan_tf`` are twins built on this package; ``gancore`` holds what every
model (DCGAN included) shares.
"""
