"""Verify the Keras MFIF-GAN against an independent PyTorch re-implementation (needs ``pip install torch``).

Random Keras weights (with non-trivial BN statistics) are exported with the original key names,
loaded *strictly* into the PyTorch modules, and both frameworks are compared on:
  G eval mode (Keras model, and the fuser's BN-folded graph) at 64×64, 34×42 (→ 36×44) and 234×322;
  G train mode (batch statistics, six encoder calls) at 32×32, batch 2;
  D (always batch statistics) at 256×256, batch 2.

    python benchmarks/verify_mfifgan_torch.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    import torch

    import fusion_tf  # noqa: F401  (oneDNN switch before TF loads)
    import tensorflow as tf
    from _torch_mfifgan import TorchDiscriminator, TorchGenerator, load

    from fusion_tf.models import mfifgan as m
    from fusion_tf.weights.mfifgan_npz import discriminator_state_dict, generator_state_dict

    torch.set_num_threads(max(1, torch.get_num_threads()))
    tf.keras.utils.set_random_seed(0)
    g, d = m.build_generator(), m.build_discriminator()
    rng = np.random.default_rng(0)
    enc = g.line1
    bns = [enc.bn1, enc.bn4, enc.bn7, g.bn1, g.bn4] + [bn for blk in enc.blocks for bn in (blk.bn1, blk.bn2)]
    for bn in bns:
        n = bn.gamma.shape[0]
        bn.gamma.assign(rng.uniform(0.5, 1.5, n).astype(np.float32))
        bn.beta.assign(rng.uniform(-0.2, 0.2, n).astype(np.float32))
        bn.moving_mean.assign(rng.uniform(-0.3, 0.3, n).astype(np.float32))
        bn.moving_variance.assign(rng.uniform(0.5, 2.0, n).astype(np.float32))
    tg = load(TorchGenerator(), generator_state_dict(g)).eval()
    td = load(TorchDiscriminator(), discriminator_state_dict(d)).train()
    folded = m.fold_generator(g)
    ok = True

    def report(name, ours, ref, tol):
        nonlocal ok
        err = float(np.max(np.abs(ours - ref)))
        good = ours.shape == ref.shape and err <= tol
        ok &= good
        print(f"{'OK ' if good else 'BAD'} {name:<40} shape {ours.shape}  max |Δ| {err:.2e} (tol {tol:g})")

    to_t = lambda x: torch.from_numpy(np.transpose(x, (0, 3, 1, 2)).copy())  # noqa: E731
    from_t = lambda x: np.transpose(x.detach().numpy(), (0, 2, 3, 1))  # noqa: E731
    for h, w in ((64, 64), (34, 42), (234, 322)):
        a = rng.uniform(-1, 1, (1, h, w, 3)).astype(np.float32)
        b = rng.uniform(-1, 1, (1, h, w, 3)).astype(np.float32)
        with torch.no_grad():
            ref = from_t(tg(to_t(a), to_t(b)))
        report(f"G eval {h}×{w} (Keras model)", g([a, b], training=False).numpy(), ref, 1e-4)
        report(f"G eval {h}×{w} (BN-folded fuser graph)", folded(tf.constant(a), tf.constant(b)).numpy(), ref, 1e-4)

    a = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    b = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    tg.train()
    with torch.no_grad():
        ref = from_t(tg(to_t(a), to_t(b)))
    report("G train mode 2×32×32 (batch statistics)", g([a, b], training=True).numpy(), ref, 1e-4)
    # moving statistics after one train-mode forward (six updates; PyTorch uses the unbiased variance)
    mean_t = tg.line1[0].line[1].running_mean.numpy()
    report("G BN running_mean after 6 updates", g.line1.bn1.moving_mean.numpy(), mean_t, 1e-5)

    x = rng.uniform(-1, 1, (2, 256, 256, 7)).astype(np.float32)
    with torch.no_grad():
        ref = from_t(td(to_t(x[..., :3]), to_t(x[..., 3:6]), to_t(x[..., 6:])))
    report("D 2×256×256 (batch statistics)", d(x, training=True).numpy(), ref, 1e-5)
    print("ALL OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
