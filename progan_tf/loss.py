"""ProGAN losses (official ``loss.py``: ``G_wgan_acgan`` / ``D_wgangp_acgan``) and the SN-ProGAN
options, the twin of :mod:`progan_torch.loss`: the same functions, signatures and returned
quantities (see there for the formulas). Labels are one-hot here (integer ids in torch).

The random numbers (mixing factors ``u``; the latents behind ``fakes``) are arguments, never
drawn here, so a test can feed both frameworks identical values.
"""

from __future__ import annotations

from progan_common.config import ProGANConfig
from progan_tf.layers import downsample2x, lerp, tf, upsample2x


def fade_reals(reals: tf.Tensor, alpha) -> tf.Tensor:
    """Official ``process_reals`` "FadeLOD": blend reals with their 2x-blurred version.

    During a fade the generator's output is ``lerp(upsample(low), high, alpha)``;
    reals get the same treatment so D cannot tell the two apart by sharpness.
    """
    return lerp(upsample2x(downsample2x(reals)), reals, alpha)


def gradient_penalty(
    critic, mixed: tf.Tensor, gamma: float, lam: float
) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-sample ``lam / gamma**2 * (||grad_x critic(mixed)[:, 0]||_2 - gamma)**2``, and the norms.

    ``critic`` returns D's (N, 1 + classes) output; only column 0 (the score) is
    differentiated. The gradient of the *sum* of scores gives each sample's own gradient
    (samples interact only through minibatch stddev, which the official code ignores too).
    """
    with tf.GradientTape() as tape:
        tape.watch(mixed)
        total = tf.reduce_sum(tf.cast(critic(mixed)[:, 0], tf.float32))
    grads = tf.cast(tape.gradient(total, mixed), tf.float32)
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]))
    return tf.square(norms - gamma) * (lam / gamma**2), norms


def _acgan(logits: tf.Tensor, labels: tf.Tensor | None) -> tf.Tensor:
    """Softmax cross-entropy per sample (labels one-hot, as official); zeros without labels."""
    if labels is None or logits.shape[1] == 0:
        return tf.zeros([tf.shape(logits)[0]], tf.float32)
    return tf.nn.softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.float32), logits=tf.cast(logits, tf.float32)
    )


def d_adversarial(real_s: tf.Tensor, fake_s: tf.Tensor, cfg: ProGANConfig) -> tf.Tensor:
    """D's per-sample adversarial term of ``cfg.loss`` (float32 scores in)."""
    if cfg.loss == "nonsaturating":
        s = cfg.label_smoothing
        return (
            tf.nn.softplus(-real_s) * (1.0 - s)
            + tf.nn.softplus(real_s) * s
            + tf.nn.softplus(fake_s)
        )
    if cfg.loss == "hinge":
        return tf.nn.relu(1.0 - real_s) + tf.nn.relu(1.0 + fake_s)
    return fake_s - real_s


def g_adversarial(fake_s: tf.Tensor, cfg: ProGANConfig) -> tf.Tensor:
    """G's per-sample adversarial term of ``cfg.loss``."""
    if cfg.loss == "nonsaturating":
        return tf.nn.softplus(-fake_s)
    return -fake_s


def d_loss(
    D,
    reals: tf.Tensor,
    fakes: tf.Tensor,
    labels: tf.Tensor | None,
    u: tf.Tensor,
    cfg: ProGANConfig,
    level: int,
    fading: bool,
    alpha,
    D_penalty=None,
) -> tuple[tf.Tensor, dict[str, tf.Tensor | None]]:
    """Mean D loss over the batch and per-term statistics (``progan_torch.loss.d_loss``).

    ``reals`` (already faded, :func:`fade_reals`) and ``fakes`` are float32 NHWC at the
    level's resolution; no gradient flows to G. One D forward on ``concat([reals, fakes])``
    (minibatch stddev grouped per half, ``chunks=2``), one on the mixed batch for the penalty
    (``D_penalty``, default ``D``), so a spectrally normalised D advances its power iteration
    exactly as the torch twin does.
    """
    D_penalty = D if D_penalty is None else D_penalty
    n = reals.shape[0]
    fakes = tf.stop_gradient(tf.cast(fakes, reals.dtype))
    both = tf.concat([reals, fakes], axis=0)
    out = tf.cast(
        D(both, level=level, fading=fading, alpha=alpha, training=True, chunks=2), tf.float32
    )
    real_out, fake_out = out[:n], out[n:]
    real_s, fake_s = real_out[:, 0], fake_out[:, 0]
    loss = d_adversarial(real_s, fake_s, cfg)
    stats: dict[str, tf.Tensor | None] = {"gp": None, "grad_norm": None}
    if cfg.gp_lambda > 0:
        target = cfg.gp_target(int(reals.shape[1]))
        mixed = lerp(reals, fakes, tf.reshape(tf.cast(u, reals.dtype), [-1, 1, 1, 1]))
        gp, norms = gradient_penalty(
            lambda x: D_penalty(x, level=level, fading=fading, alpha=alpha, training=True),
            mixed,
            target,
            cfg.gp_lambda,
        )
        loss += gp
        stats["gp"] = tf.reduce_mean(gp)
        stats["grad_norm"] = tf.reduce_mean(norms) * (cfg.gp_gamma / target)
    if cfg.drift:
        loss += cfg.drift * tf.square(real_s)
    label = _acgan(real_out[:, 1:], labels) + _acgan(fake_out[:, 1:], labels)
    loss += cfg.acgan_weight * label
    stats.update(
        d_real=tf.reduce_mean(real_s), d_fake=tf.reduce_mean(fake_s), d_label=tf.reduce_mean(label)
    )
    return tf.reduce_mean(loss), stats


def g_loss(
    D,
    fakes: tf.Tensor,
    labels: tf.Tensor | None,
    cfg: ProGANConfig,
    level: int,
    fading: bool,
    alpha,
) -> tf.Tensor:
    """Mean G loss: the adversarial term on ``D(fakes)`` (+ AC-GAN term on the fakes); the
    fakes (carrying G's graph) are handed to D in float32."""
    out = D(tf.cast(fakes, tf.float32), level=level, fading=fading, alpha=alpha, training=True)
    out = tf.cast(out, tf.float32)
    return tf.reduce_mean(
        g_adversarial(out[:, 0], cfg) + cfg.acgan_weight * _acgan(out[:, 1:], labels)
    )
