"""Paper-faithful ProGAN in TensorFlow 2 / Keras 3, the twin of ``progan_torch``.

Modules: ``layers``, ``networks``, ``loss``, ``training`` (the step), ``train`` (loop +
CLI), ``sample``, ``checkpoint``, ``convert`` (torch <-> Keras weights), ``bench``.
See ``progan_tf/README.md``.
"""

# Importing the package is cheap (``python -m progan_tf.train --help`` loads no framework).
# Every module here that needs TensorFlow gets it through ``gancore.tf_utils`` (``from
# gancore.tf_utils import keras, tf``), which loads triton first (triton loaded after
# TensorFlow segfaults a process that also uses torch, see gancore/tf_import.py) and
# silences TensorFlow's C++ start-up messages.
