"""Paper-faithful ProGAN (Karras et al. 2018) in PyTorch; see README.md in this folder.

Importing the package is cheap (no torch import): the CLIs' ``--help`` stays fast.
"""

from gancore.tf_import import load_triton_first

# torch loads triton on its first optimiser step; with TensorFlow already imported that is a
# segmentation fault. Loading it now avoids it; if TensorFlow came first, warn. See
# gancore/tf_import.py.
load_triton_first(warn_if_late=True)
