"""vanilla_gan package (under construction)."""

from gancore.tf_import import load_triton_first

# Before tf_nets / tf_loop import Keras: triton loaded after TensorFlow segfaults a process
# that also uses torch (the converter does, and a notebook may). See gancore/tf_import.py.
load_triton_first()
