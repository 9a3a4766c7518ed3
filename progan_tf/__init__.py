"""Paper-faithful ProGAN in TensorFlow 2 / Keras 3, the twin of ``progan_torch``.

Modules: ``layers``, ``networks``, ``loss``, ``training`` (the step), ``train`` (loop +
CLI), ``sample``, ``checkpoint``, ``convert`` (torch <-> Keras weights), ``bench``.
See ``progan_tf/README.md``.
"""

# TensorFlow is loaded through gancore.tf_utils (quiet start-up) before any module here.
import gancore.tf_utils  # noqa: E402, F401
