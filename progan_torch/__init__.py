"""Paper-faithful ProGAN (Karras et al. 2018) in PyTorch; see README.md in this folder.

Importing the package is cheap (no torch import): the CLIs' ``--help`` stays fast.
"""
