"""ProGAN losses: WGAN-GP with drift, optional AC-GAN terms (official ``loss.py``).

``G_wgan_acgan`` and ``D_wgangp_acgan`` of tkarras/progressive_growing_of_gans:

- G: ``-D(G(z))`` (+ AC-GAN cross-entropy on the fakes' labels).
- D, per sample: ``D(fake) - D(real) + lambda / gamma^2 * (||grad D(mix)|| - gamma)^2
  + drift * D(real)^2``, ``mix = real + (fake - real) * u``, ``u ~ U(0, 1)`` per sample;
  mean over the batch (+ AC-GAN cross-entropy on reals and fakes).

The random numbers (latents ``z``, mixing factors ``u``) are arguments, never
drawn here, so a test can feed both frameworks identical values.
"""

from __future__ import annotations

import tensorflow as tf

from progan_common.config import ProGANConfig
from progan_tf.layers import downsample2x, lerp, upsample2x


def fade_reals(reals: tf.Tensor, alpha) -> tf.Tensor:
    """Official ``process_reals`` "FadeLOD": blend reals with their 2x-blurred version.

    During a fade the generator's output is ``lerp(upsample(low), high, alpha)``;
    reals get the same treatment so D cannot tell the two apart by sharpness.
    """
    return lerp(upsample2x(downsample2x(reals)), reals, alpha)


def gradient_penalty(critic, mix: tf.Tensor, gamma: float) -> tuple[tf.Tensor, tf.Tensor]:
    """``((||grad_x critic(mix)||_2 - gamma) / gamma)^2`` per sample and the norms.

    ``critic`` maps images to per-sample scores. The gradient of the *sum* of scores
    gives each sample's own gradient (samples do not interact, except through
    minibatch stddev, which the official code also ignores here).
    """
    with tf.GradientTape() as tape:
        tape.watch(mix)
        scores = tf.cast(critic(mix), tf.float32)
        total = tf.reduce_sum(scores)
    grads = tf.cast(tape.gradient(total, mix), tf.float32)
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]))
    return tf.square(norms - gamma) / (gamma * gamma), norms


def _acgan_ce(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Softmax cross-entropy per sample (labels one-hot, as official)."""
    return tf.nn.softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.float32), logits=tf.cast(logits, tf.float32)
    )


def d_loss(
    G,
    D,
    cfg: ProGANConfig,
    reals: tf.Tensor,
    labels: tf.Tensor | None,
    z: tf.Tensor,
    u: tf.Tensor,
    level: int,
    fading: bool,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Mean D loss over the batch and per-term statistics (for the log).

    ``reals`` are already faded (:func:`fade_reals`) and at the level's resolution.
    """
    fakes = tf.stop_gradient(G(z, labels, level=level, fading=fading, training=True))
    fakes = tf.cast(fakes, reals.dtype)
    real_out = tf.cast(D(reals, level=level, fading=fading, training=True), tf.float32)
    fake_out = tf.cast(D(fakes, level=level, fading=fading, training=True), tf.float32)
    real_s, fake_s = real_out[:, 0], fake_out[:, 0]
    u = tf.reshape(tf.cast(u, reals.dtype), [-1, 1, 1, 1])
    mix = reals + (fakes - reals) * u
    gp, norms = gradient_penalty(
        lambda x: D(x, level=level, fading=fading, training=True)[:, 0], mix, cfg.gp_gamma
    )
    per_sample = fake_s - real_s + cfg.gp_lambda * gp + cfg.drift * tf.square(real_s)
    if labels is not None and D.num_classes:
        per_sample += cfg.acgan_weight * (
            _acgan_ce(real_out[:, 1:], labels) + _acgan_ce(fake_out[:, 1:], labels)
        )
    loss = tf.reduce_mean(per_sample)
    # Same names and meaning as progan_torch's log statistics (gp includes lambda).
    stats = {
        "d_real": tf.reduce_mean(real_s),
        "d_fake": tf.reduce_mean(fake_s),
        "gp": cfg.gp_lambda * tf.reduce_mean(gp),
        "grad_norm": tf.reduce_mean(norms),
    }
    return loss, stats


def g_loss(
    G, D, cfg: ProGANConfig, labels: tf.Tensor | None, z: tf.Tensor, level: int, fading: bool
) -> tf.Tensor:
    """Mean G loss ``-D(G(z))`` (+ AC-GAN term on the fakes)."""
    fakes = G(z, labels, level=level, fading=fading, training=True)
    out = tf.cast(D(fakes, level=level, fading=fading, training=True), tf.float32)
    per_sample = -out[:, 0]
    if labels is not None and D.num_classes:
        per_sample += cfg.acgan_weight * _acgan_ce(out[:, 1:], labels)
    return tf.reduce_mean(per_sample)
