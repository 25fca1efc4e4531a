"""MFIF-GAN training: WGAN-GP with 5 critic updates per generator update, and ``fusion-tf train mfifgan``.

Schedule (spec ``mfif_gan.md`` §4): one loop step = one critic iteration on its own batch; every 5th
iteration the generator is updated on that same batch (``d_steps=5``, ``d_share_batch=False`` in
:class:`~fusion_tf.training.loop.TrainingMethod`).  The generator runs in training mode in every critic
step too (its BN moving statistics update there, as in the original); the critic is always in
batch-statistics mode and is called separately for real, fake and interpolated maps.

The full recipe (120,000 critic iterations at batch 2 on 256² inputs, 2.4 TFLOPs per 520² pair of
generator compute) is far beyond a 2-core CPU; run it on a GPU or train reduced (``--max-steps``).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass, field

import keras
import tensorflow as tf

from fusion_tf.data import mfifgan as data
from fusion_tf.models.mfifgan import D_VARIANTS, build_discriminator, build_generator, critic_input
from fusion_tf.objectives import mfifgan as objective
from fusion_tf.training import distribute
from fusion_tf.training.loop import AdversarialTraining, LoopConfig, fit, float32


class CodedLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """The original's late decay: at the end of iteration i, if (i+1) % 1000 == 0 and (i+1) > N − 10,000,
    lr −= lr0/10,000.  Ten steps of 1e-8 in total (0.999e-4 at the end; none by 110k).

    ``updates_per_step`` maps this optimizer's update count to the critic iteration it happens in
    (1 for D; 5 for G, whose k-th update is in iteration 5k + 4).
    """

    def __init__(self, initial: float, num_iters: int, updates_per_step: int = 1, decay_iters: int = 10_000,
                 every: int = 1000):
        self.initial, self.num_iters, self.per = float(initial), int(num_iters), int(updates_per_step)
        self.decay_iters, self.every = int(decay_iters), int(every)

    def __call__(self, step):
        i = tf.cast(step, tf.int64) * self.per + (self.per - 1)  # critic iteration of this update
        start = (self.num_iters - self.decay_iters) // self.every
        n = tf.maximum(i // self.every - start, 0)
        return self.initial - tf.cast(n, tf.float32) * (self.initial / self.decay_iters)

    def get_config(self):
        return {"initial": self.initial, "num_iters": self.num_iters, "updates_per_step": self.per,
                "decay_iters": self.decay_iters, "every": self.every}


@dataclass(frozen=True)
class MFIFGANRecipe:
    """The original's hyper-parameters; defaults are faithful (spec §4–§5)."""

    batch_size: int = 2
    num_iters: int = 120_000  # critic iterations (released checkpoint: 110,000)
    n_critic: int = 5
    learning_rate: float = 1e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    epsilon: float = 1e-8
    lr_decay: bool = True  # the coded late linear decay (negligible; absent at 110k)
    loss: objective.MFIFGANLossWeights = field(default_factory=objective.MFIFGANLossWeights)
    gt_range: str = "code"  # "code": map in [−1, 1] as the original trains; "paper": {0, 1}
    d_variant: str = "coded"  # "coded" 7-conv patch critic, or "paper8"
    image_size: int = 256
    se_blocks: int = 9  # SE-ResNet blocks in the encoder (original: 9, hard-coded); fewer only for smoke tests
    shuffle: bool = True
    drop_remainder: bool = False  # original keeps the last, smaller batch of an epoch
    seed: int = 0

    def adam(self, updates_per_step: int) -> keras.optimizers.Adam:
        lr = (CodedLinearDecay(self.learning_rate, self.num_iters, updates_per_step) if self.lr_decay
              else self.learning_rate)
        return keras.optimizers.Adam(lr, beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)


class MFIFGANTraining(AdversarialTraining):
    """Generator, critic, two Adams and the α RNG; batches ``{"a", "b", "map"}``."""

    d_share_batch = False

    def __init__(self, recipe: MFIFGANRecipe = MFIFGANRecipe(), **kwargs):
        super().__init__(**kwargs)
        if recipe.gt_range not in objective.GT_RANGES:
            raise ValueError(f"gt_range must be one of {objective.GT_RANGES}")
        if recipe.d_variant not in D_VARIANTS:
            raise ValueError(f"d_variant must be one of {D_VARIANTS}")
        self.recipe = recipe
        self.d_steps = recipe.n_critic
        self.setup_networks(recipe.seed, lambda: build_generator(recipe.se_blocks),
                            lambda: build_discriminator(recipe.d_variant, recipe.image_size),
                            recipe.adam(recipe.n_critic), recipe.adam(1))

    def _critic(self, x, training=True):
        return float32(self.discriminator(x, training=training))

    def d_step(self, batch) -> dict:
        a, b, real = batch["a"], batch["b"], batch["map"]
        # train-mode forward: updates G's BN moving statistics although G is not stepped (faithful)
        fake = tf.stop_gradient(float32(self.generator([a, b], training=True)))
        alpha = self.rng.uniform(tf.stack([tf.shape(real)[0], 1, 1, 1]), dtype=real.dtype)
        w = self.recipe.loss
        with tf.GradientTape() as tape:
            d_real = self._critic(critic_input(a, b, real))
            d_fake = self._critic(critic_input(a, b, fake))
            gp = objective.gradient_penalty(self._critic, a, b, objective.interpolate(real, fake, alpha), w.gp_eps)
            total, wass, gp = objective.critic_loss(d_real, d_fake, gp, w)
        self.apply_gradients(tape, total, self.discriminator.trainable_variables, self.d_optimizer)
        return {"d_loss": total, "d_wasserstein": wass, "d_gp": gp}

    def g_step(self, batch) -> dict:
        a, b, real = batch["a"], batch["b"], batch["map"]
        with tf.GradientTape() as tape:
            fake = float32(self.generator([a, b], training=True))
            d_fake = self._critic(critic_input(a, b, fake))
            total, adv, rec = objective.generator_loss(d_fake, fake, real, self.recipe.loss)
        self.apply_gradients(tape, total, self.generator.trainable_variables, self.g_optimizer)
        return {"g_loss": total, "g_adv": adv, "g_l1": rec}


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    r = MFIFGANRecipe()
    parser.add_argument("--store", required=True, help="HDF5 store from 'fusion-tf prepare mfifgan'")
    parser.add_argument("--run-dir", required=True, help="checkpoints, recipe.json, log.csv, generator.weights.h5")
    parser.add_argument("--num-iters", type=int, default=r.num_iters, help="critic iterations (original 120,000)")
    parser.add_argument("--batch-size", type=int, default=r.batch_size)
    parser.add_argument("--n-critic", type=int, default=r.n_critic, help="critic updates per G update (own batch each)")
    parser.add_argument("--lr", type=float, default=r.learning_rate)
    parser.add_argument("--no-lr-decay", action="store_true", help="constant lr (the coded decay is 10 × 1e-8)")
    parser.add_argument("--gt-range", choices=objective.GT_RANGES, default=r.gt_range,
                        help="code (default): target map in [−1,1] as the original trains; paper: {0,1}")
    parser.add_argument("--d-variant", choices=D_VARIANTS, default=r.d_variant,
                        help="coded (default): 7-conv patch critic; paper8: 8 convs, single output")
    parser.add_argument("--gp-eps", type=float, default=0.0, help="ε inside the GP square root (original 0)")
    parser.add_argument("--drop-remainder", action="store_true",
                        help="drop each epoch's last smaller batch (one shape: one XLA compilation)")
    parser.add_argument("--seed", type=int, default=r.seed)


def recipe_from_args(args, image_size: int) -> MFIFGANRecipe:
    return MFIFGANRecipe(batch_size=args.batch_size, num_iters=args.num_iters, n_critic=args.n_critic,
                         learning_rate=args.lr, lr_decay=not args.no_lr_decay, gt_range=args.gt_range,
                         d_variant=args.d_variant, image_size=image_size, drop_remainder=args.drop_remainder,
                         loss=objective.MFIFGANLossWeights(gp_eps=args.gp_eps), seed=args.seed)


def train(args) -> int:
    """``fusion-tf train mfifgan``: run (or resume) the recipe on a store."""
    dist = distribute.from_args(args)  # first: multi-worker collectives must be set up before TF starts
    store = data.open_store(args.store)
    recipe = recipe_from_args(args, store.size)
    dist.check_batches(recipe.batch_size, store.count, keep_partial=not recipe.drop_remainder)
    method = dist.build(lambda: MFIFGANTraining(recipe))
    spe = data.steps_per_epoch(store, recipe.batch_size, recipe.drop_remainder)
    epochs = math.ceil(recipe.num_iters / spe)
    max_steps = recipe.num_iters if args.max_steps is None else min(args.max_steps, recipe.num_iters)
    config = LoopConfig(run_dir=args.run_dir, epochs=epochs, steps_per_epoch=spe,
                        jit_compile=distribute.resolve_jit(getattr(args, "jit", None), False),
                        save_every=args.save_every, max_steps=max_steps, progress=not args.quiet, distribution=dist,
                        restart=getattr(args, "restart", False))
    print(f"MFIF-GAN: {store.count} triplets of {store.size}² from {store.path}; {spe} critic steps/epoch, "
          f"{recipe.num_iters} critic iterations ({recipe.num_iters // recipe.n_critic} G updates); "
          f"global batch {recipe.batch_size}; {dist.describe()}")

    def make_dataset(epoch: int, skip: int):
        return data.train_dataset(store, recipe.batch_size, epoch, recipe.seed, skip, recipe.gt_range,
                                  recipe.shuffle, recipe.drop_remainder)

    record = {**asdict(recipe), "store": str(args.store)}
    result = fit(method, make_dataset, config, recipe=record)
    state = "finished" if result.step >= recipe.num_iters else "paused (resume with the same command)"
    print(f"{state} at step {result.step}: {result.last_logs}; generator weights: {result.weights_path}")
    return 0
