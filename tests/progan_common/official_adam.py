"""TF1's ``tf.train.AdamOptimizer``, the official ProGAN optimiser, transcribed to NumPy (test
helper; shares no code with the project).

From TF1's ``adam.py`` and its ``ApplyAdam`` kernel: the non-slot ``beta1_power`` /
``beta2_power`` are ONE pair per optimiser, multiplied by beta once per ``apply_gradients``
call (so t counts applied updates, for every variable alike), and each variable with a
gradient is updated with

    lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)
    m = m + (g - m) * (1 - beta1);  v = v + (g*g - v) * (1 - beta2)
    w = w - lr_t * m / (sqrt(v) + epsilon)

Variables whose gradient is None are left out of that call. float64 throughout.
"""

from __future__ import annotations

import math

import numpy as np


class TF1Adam:
    def __init__(self, lr: float, beta1: float, beta2: float, eps: float) -> None:
        self.lr, self.b1, self.b2, self.eps = lr, beta1, beta2, eps
        self.t = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def apply(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray | None]) -> None:
        """One ``apply_gradients``: updates ``params`` in place."""
        self.t += 1
        lr_t = self.lr * math.sqrt(1 - self.b2**self.t) / (1 - self.b1**self.t)
        for name, g in grads.items():
            if g is None:
                continue
            g = np.asarray(g, np.float64)
            m = self.m.setdefault(name, np.zeros_like(g))
            v = self.v.setdefault(name, np.zeros_like(g))
            m += (g - m) * (1 - self.b1)
            v += (g * g - v) * (1 - self.b2)
            params[name] -= lr_t * m / (np.sqrt(v) + self.eps)


def first_move_in_lr(t: int, beta1: float, beta2: float, g: np.ndarray, eps: float) -> np.ndarray:
    """|move| / lr of a variable's FIRST update when the optimiser's counter reaches ``t``
    (zero moments before): ``sqrt(1 - b2^t) / (1 - b1^t) * (1 - b1)|g| / (sqrt(1 - b2)|g| + eps)``."""
    g = np.abs(np.asarray(g, np.float64))
    return (
        math.sqrt(1 - beta2**t)
        / (1 - beta1**t)
        * (1 - beta1)
        * g
        / (math.sqrt(1 - beta2) * g + eps)
    )
