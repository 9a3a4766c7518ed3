"""DCGAN (Radford et al. 2016) and SN-DCGAN (Miyato et al. 2018, the "standard CNN") in PyTorch
and TensorFlow/Keras, built from one framework-neutral layer list (``arch.py``)."""
