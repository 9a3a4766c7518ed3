"""Paper-faithful ProGAN in TensorFlow 2 / Keras 3, the twin of ``progan_torch``.

Modules: ``layers``, ``networks``, ``loss``, ``training`` (the step), ``train`` (loop +
CLI), ``sample``, ``checkpoint``, ``convert`` (torch <-> Keras weights), ``bench``.
See ``progan_tf/README.md``.
"""

from gancore.tf_import import load_triton_first

# Before any submodule imports TensorFlow: triton loaded after TensorFlow segfaults a process
# that also uses torch (the converter does). See gancore/tf_import.py.
load_triton_first()

# TensorFlow is then loaded through gancore.tf_utils (quiet start-up) before any module here.
import gancore.tf_utils  # noqa: E402, F401
