"""MFIF-GAN networks: parameter counts, PyTorch padding/alignment, BN folding, PyTorch-layout weights."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from fusion_tf.errors import WeightsError
from fusion_tf.models import mfifgan as m
from fusion_tf.weights import mfifgan_npz as npz
from fusion_tf.weights.torch_npz import conv_transpose2d_kernel, conv2d_kernel


@pytest.fixture(scope="module")
def nets():
    tf.keras.utils.set_random_seed(3)
    return m.build_generator(), m.build_discriminator()


def _count(weights) -> int:
    return sum(int(np.prod(w.shape)) for w in weights)


def test_models_command_shows_counts(capsys):
    from fusion_tf.cli import main

    assert main(["models"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("mfifgan")]
    counts = {r[1]: (r[2], r[3]) for r in rows}
    assert counts["generator"] == ("13,700,928", "10,880")
    assert counts["discriminator"] == ("3,815,105", "2,304")


def test_counts_shapes_and_variants(nets):
    g, d = nets
    assert _count(g.line1.trainable_weights) == 11_072_448
    a = tf.random.uniform((1, 34, 42, 3), -1, 1, seed=1)
    out = g([a, a], training=True)
    assert out.shape == (1, 36, 44, 1)  # 4·⌈⌈H/2⌉/2⌉
    assert d(tf.zeros((1, 256, 256, 7))).shape == (1, 6, 6, 1)
    d8 = m.build_discriminator("paper8", 64)
    assert len(d8.convs) + 1 == 8 and d8(tf.zeros((2, 64, 64, 7))).shape == (2, 1, 1, 1)


def _torch_conv_ref(x, w, stride, pad):
    """NumPy PyTorch conv2d: x (H,W,Cin), w (Cout,Cin,k,k), zero padding ``pad`` on every side."""
    xp = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
    k = w.shape[-1]
    ho, wo = (xp.shape[0] - k) // stride + 1, (xp.shape[1] - k) // stride + 1
    out = np.zeros((ho, wo, w.shape[0]))
    for i in range(ho):
        for j in range(wo):
            patch = xp[i * stride : i * stride + k, j * stride : j * stride + k]
            out[i, j] = np.einsum("hwc,ochw->o", patch, w)
    return out


def test_stride2_padding_is_pytorch_not_same(rng):
    x = rng.standard_normal((1, 8, 8, 4)).astype(np.float32)
    w = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
    ref = _torch_conv_ref(x[0], w, 2, 1)
    k = tf.constant(conv2d_kernel(w))
    ours = tf.nn.conv2d(m.torch_pad(tf.constant(x), 1), k, 2, "VALID").numpy()[0]
    same = tf.nn.conv2d(tf.constant(x), k, 2, "SAME").numpy()[0]
    np.testing.assert_allclose(ours, ref, atol=1e-4)
    assert np.abs(same - ref).max() > 1e-2


def test_conv_transpose_alignment_matches_scatter_add(rng):
    x = rng.standard_normal((5, 6, 3)).astype(np.float32)
    w = rng.standard_normal((3, 2, 4, 4)).astype(np.float32)  # PyTorch (in, out, kh, kw)
    full = np.zeros((2 * 5 + 2, 2 * 6 + 2, 2))
    for i in range(5):
        for j in range(6):
            full[2 * i : 2 * i + 4, 2 * j : 2 * j + 4] += np.einsum("c,cokl->klo", x[i, j], w)
    ref = full[1:-1, 1:-1]  # ConvTranspose2d(k4, s2, padding=1)
    layer = tf.keras.layers.Conv2DTranspose(2, 4, strides=2, padding="same", use_bias=False)
    layer.build((None, None, None, 3))
    layer.kernel.assign(conv_transpose2d_kernel(w))
    np.testing.assert_allclose(layer(x[None]).numpy()[0], ref, atol=1e-4)


def test_folded_generator_equals_inference_mode(nets):
    g, _ = nets
    # non-trivial BN statistics so the fold is exercised
    for bn in (g.line1.bn1, g.line1.blocks[3].bn2, g.bn1, g.bn4):
        n = bn.gamma.shape[0]
        bn.moving_mean.assign(np.linspace(-0.2, 0.3, n).astype(np.float32))
        bn.moving_variance.assign(np.linspace(0.5, 2.0, n).astype(np.float32))
        bn.gamma.assign(np.linspace(0.8, 1.2, n).astype(np.float32))
    a = tf.random.uniform((1, 30, 22, 3), -1, 1, seed=5)
    b = tf.random.uniform((1, 30, 22, 3), -1, 1, seed=6)
    want = g([a, b], training=False).numpy()
    got = m.fold_generator(g)(a, b).numpy()
    assert got.shape == (1, 32, 24, 1)
    np.testing.assert_allclose(got, want, atol=2e-5)
    # the batched inference encoder equals six separate inference calls
    sep = [g.line1(src[..., c : c + 1], training=False) for src in (a, b) for c in range(3)]
    feats = tf.concat([(sep[0] + sep[1] + sep[2]) / 3, (sep[3] + sep[4] + sep[5]) / 3], -1)
    np.testing.assert_allclose(g.encode(a, b, training=False).numpy(), feats.numpy(), atol=1e-5)


def test_pytorch_state_dict_round_trip(nets, tmp_path):
    g, d = nets
    sd_g, sd_d = npz.generator_state_dict(g), npz.discriminator_state_dict(d)
    # the original's key names and PyTorch layouts
    assert sd_g["line1.0.line.0.weight"].shape == (64, 1, 7, 7)
    assert sd_g["line1.0.line.17.se.fc.0.weight"].shape == (16, 256)
    assert sd_g["decode.0.weight"].shape == (512, 256, 4, 4)
    assert sd_g["decode.6.weight"].shape == (1, 128, 7, 7)
    assert "line1.0.line.9.bn2.num_batches_tracked" in sd_g and "line1.0.line.8.weight" not in sd_g
    assert sum(v.size for k, v in sd_g.items() if "running" not in k and "num_batches" not in k) == 13_700_928
    conv_biases = {k for k in sd_d if k.endswith(".bias") and sd_d[k[:-4] + "weight"].ndim == 4}
    assert conv_biases == {"main.0.bias", "main.2.bias", "main.5.bias", "main.17.bias"}
    assert sd_d["main.17.weight"].shape == (1, 256, 4, 4) and sd_d["main.15.running_var"].shape == (256,)
    npz.save_npz(tmp_path / "G.npz", sd_g)
    npz.save_npz(tmp_path / "D.npz", sd_d)

    tf.keras.utils.set_random_seed(99)
    g2, d2 = m.build_generator(), m.build_discriminator()
    npz.load_generator_npz(g2, tmp_path / "G.npz")
    npz.load_discriminator_npz(d2, tmp_path / "D.npz")
    for w1, w2 in zip(g.weights + d.weights, g2.weights + d2.weights):
        np.testing.assert_array_equal(w1.numpy(), w2.numpy())
    x = tf.random.uniform((2, 32, 32, 7), -1, 1, seed=2)
    np.testing.assert_array_equal(d(x).numpy(), d2(x).numpy())

    extra = dict(sd_g, **{"line1.0.line.18.conv1.weight": np.zeros((256, 256, 3, 3), np.float32)})
    with pytest.raises(WeightsError, match="not consumed"):
        npz.load_state_dict(g2, extra, npz.generator_entries)
    missing = {k: v for k, v in sd_g.items() if k != "decode.3.weight"}
    with pytest.raises(WeightsError, match="decode.3.weight"):
        npz.load_state_dict(g2, missing, npz.generator_entries)
    # nn.DataParallel checkpoints ("module." prefix) load too
    npz.save_npz(tmp_path / "Gdp.npz", {f"module.{k}": v for k, v in sd_g.items()})
    npz.load_generator_npz(g2, tmp_path / "Gdp.npz")
