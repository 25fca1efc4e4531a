"""GIPC-GAN networks: both variants' parameter counts (spec §5), Table 1 wiring, size preservation."""

import numpy as np
import pytest
import tensorflow as tf

from fusion_tf.models.gipcgan import build_discriminator, build_generator, build_networks


def _counts(model):
    return (sum(int(np.prod(w.shape)) for w in model.trainable_weights),
            sum(int(np.prod(w.shape)) for w in model.non_trainable_weights))


@pytest.mark.parametrize("variant, g, d", [
    ("paper", (156_033, 608), (99_649, 448)),
    ("count_matched", (42_273, 256), (392_833, 896)),
])
def test_parameter_counts(variant, g, d):
    nets = build_networks(variant)
    assert _counts(nets["generator"]) == g
    assert _counts(nets["discriminator"]) == d


def test_count_matched_reproduces_table4_in_units_of_2_pow_20():
    g, d = (_counts(m)[0] for m in build_networks("count_matched").values())
    # Table 4: test 0.0404, train 0.4151 — reproduced to within two units of the last digit
    assert abs(g / 2**20 - 0.0404) <= 0.0002 and abs((g + d) / 2**20 - 0.4151) <= 0.0002


@pytest.mark.parametrize("exchange", ["all_levels", "first_level"])
def test_table1_input_channels(exchange):
    g = build_generator("paper", exchange)
    cins = [int(b.conv.kernel.shape[2]) for b in g.encoder_near]
    assert cins == [1, 32, 48, 64] == [int(b.conv.kernel.shape[2]) for b in g.encoder_far]
    assert g.feature.conv.kernel.shape == (1, 1, 128, 128)
    assert [tuple(b.conv.kernel.shape) for b in g.decoder] == [(3, 3, 128, 64), (3, 3, 64, 32), (3, 3, 32, 16)]
    assert [b.bn is not None for b in g.decoder] == [False, True, True]  # stated: no BN in block 6
    assert g.output_conv.kernel.shape == (3, 3, 16, 1)
    x = tf.random.uniform((2, 9, 9, 1), -1, 1, seed=1)
    assert g.encode(x, -x).shape == (2, 9, 9, 128)


def test_exchange_wiring_feeds_the_other_path():
    """W1: near's block-2 input holds far's block-1 output; W1′: only level 1 crosses over."""
    rng = np.random.default_rng(0)
    near = tf.constant(rng.uniform(-1, 1, (1, 12, 12, 1)), tf.float32)
    far_a = tf.constant(rng.uniform(-1, 1, (1, 12, 12, 1)), tf.float32)
    far_b = tf.constant(rng.uniform(-1, 1, (1, 12, 12, 1)), tf.float32)
    for exchange in ("all_levels", "first_level"):
        g = build_generator("count_matched", exchange)
        # encoder output channels 0,2,4,6 are near's c1..c4; far changes c2n onwards, never c1n
        ya, yb = g.encode(near, far_a).numpy(), g.encode(near, far_b).numpy()
        np.testing.assert_array_equal(ya[..., :16], yb[..., :16])
        assert np.abs(ya[..., 32:48] - yb[..., 32:48]).max() > 0


@pytest.mark.parametrize("variant", ["paper", "count_matched"])
@pytest.mark.parametrize("size", [(17, 22), (24, 31)])
def test_generator_preserves_size_and_range(variant, size):
    g = build_generator(variant)
    x = tf.random.uniform((1, *size, 1), -1, 1, seed=2)
    y = g([x, x], training=False)
    assert y.shape == (1, *size, 1)
    assert float(tf.reduce_max(tf.abs(y))) < 1.0


@pytest.mark.parametrize("variant, width", [("paper", 128), ("count_matched", 256)])
def test_discriminator_valid_padding_at_80(variant, width):
    d = build_discriminator(variant, 80)
    assert d.feature_size() == 4  # 80 → 39 → 19 → 9 → 4
    assert d.linear.kernel.shape == (4 * 4 * width, 1)
    assert d(tf.zeros((3, 80, 80, 1))).shape == (3, 1)
