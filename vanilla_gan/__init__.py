"""DCGAN (Radford et al. 2016) and SN-DCGAN (Miyato et al. 2018, the "standard CNN") in PyTorch
and TensorFlow/Keras, built from one framework-neutral layer list (``arch.py``)."""

from gancore.tf_import import load_triton_first

# Before tf_nets / tf_training import Keras: triton loaded after TensorFlow segfaults a process
# that also uses torch (the converter does, and a notebook may). See gancore/tf_import.py.
load_triton_first()
