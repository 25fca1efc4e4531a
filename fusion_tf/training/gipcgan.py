"""GIPC-GAN training: the recipe, the two update steps, and the ``train gipcgan`` command.

Algorithm 1 of the paper: per step two D updates, then one G update; batch 32, 10 epochs, Adam
(β 0.5, 0.999), lr 1e-4 for both with a "linear decline".  Inferred (``docs/gipcgan.md``): the D and
G updates of a step share one batch (MFF-GAN's code; Algorithm 1 redraws), the decline runs linearly
to 0 over the whole run (per optimizer update, so D's schedule spans twice as many updates), Adam
ε = 1e-8, patches reshuffled every epoch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, field

import keras
import tensorflow as tf

from fusion_tf.data.gipcgan import SOURCES
from fusion_tf.data.patches import open_patch_store
from fusion_tf.data.pipeline import patch_dataset, steps_per_epoch
from fusion_tf.errors import FusionError
from fusion_tf.models.gipcgan import EXCHANGES, VARIANTS, build_discriminator, build_generator
from fusion_tf.objectives import gipcgan as objective
from fusion_tf.training import distribute
from fusion_tf.training.loop import AdversarialTraining, LoopConfig, fit, float32

COMPACT_MODEL = "gipcgan-compact"


@dataclass(frozen=True)
class GIPCGANRecipe:
    """The paper's hyper-parameters (spec ``gipc_gan.md`` §6–§7); inferred ones are marked."""

    variant: str = "paper"  # "paper" (Tables 1–2) | "count_matched" (Table 4)
    exchange: str = "all_levels"  # inferred wiring W1; "first_level" = W1′
    batch_size: int = 32
    epochs: int = 10
    d_steps: int = 2  # D updates per G update, same batch (t = 2:1)
    learning_rate: float = 1e-4
    lr_decay: bool = True  # linear decline …
    lr_end: float = 0.0  # … to this value at the last update (inferred)
    beta_1: float = 0.5
    beta_2: float = 0.999
    epsilon: float = 1e-8  # inferred (TF default)
    loss: objective.GIPCGANLossWeights = field(default_factory=objective.GIPCGANLossWeights)
    shuffle: bool = True  # inferred
    seed: int = 0
    patch: int = 80

    def __post_init__(self):
        if self.variant not in VARIANTS or self.exchange not in EXCHANGES:
            raise FusionError(f"variant must be one of {VARIANTS} and exchange one of {EXCHANGES}")

    def adam(self, decay_steps: int) -> keras.optimizers.Adam:
        lr = self.learning_rate
        if self.lr_decay:
            lr = keras.optimizers.schedules.PolynomialDecay(lr, max(int(decay_steps), 1), self.lr_end, power=1.0)
        return keras.optimizers.Adam(lr, beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)

    def to_dict(self) -> dict:
        """JSON-ready (tuples as lists), so a resumed run's recipe.json compares equal."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


class GIPCGANTraining(AdversarialTraining):
    """G, D, two Adams and the soft-label RNG; batches ``{"near", "far", "gt"}`` in [−1, 1].

    ``total_steps`` (G updates of the whole run) sets the length of the linear lr decline.
    """

    d_share_batch = True

    def __init__(self, recipe: GIPCGANRecipe = GIPCGANRecipe(), total_steps: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.recipe = recipe
        w = recipe.loss
        # both ablations at once leave D nothing to learn: plain supervised training
        self.d_steps = recipe.d_steps if any((w.lam3, w.lam4, w.lam5, w.lam6)) else 0
        self.setup_networks(recipe.seed, lambda: build_generator(recipe.variant, recipe.exchange),
                            lambda: build_discriminator(recipe.variant, recipe.patch),
                            recipe.adam(total_steps), recipe.adam(total_steps * max(self.d_steps, 1)))

    def _critic(self, x):
        return float32(self.discriminator(x, training=True))

    # AutoGraph is skipped for the methods below (do_not_convert): they hold no tensor-dependent
    # Python control flow (``if weight == 0`` tests Python floats), and converting them was a
    # third of the time to trace a training iteration.

    # -- losses (no updates; the tests differentiate these directly) -------------------------
    @tf.autograph.experimental.do_not_convert
    def d_losses(self, batch, weights: objective.GIPCGANLossWeights | None = None) -> dict:
        # G in training mode, as in its own update, so D judges the images G is trained to make
        fused = tf.stop_gradient(float32(self.generator([batch["near"], batch["far"]], training=True)))
        return objective.discriminator_losses(self._critic, fused, batch["gt"], self.rng, weights or self.recipe.loss)

    @tf.autograph.experimental.do_not_convert
    def g_losses(self, batch, weights: objective.GIPCGANLossWeights | None = None) -> dict:
        fused = float32(self.generator([batch["near"], batch["far"]], training=True))
        return objective.generator_losses(self._critic, fused, batch["gt"], self.rng, weights or self.recipe.loss)

    # -- updates ------------------------------------------------------------------------------
    @tf.autograph.experimental.do_not_convert
    def d_step(self, batch) -> dict:
        with tf.GradientTape() as tape:
            logs = self.d_losses(batch)
        self.apply_gradients(tape, logs["d_loss"], self.discriminator.trainable_variables, self.d_optimizer)
        return logs

    @tf.autograph.experimental.do_not_convert
    def g_step(self, batch) -> dict:
        with tf.GradientTape() as tape:
            logs = self.g_losses(batch)
        self.apply_gradients(tape, logs["g_loss"], self.generator.trainable_variables, self.g_optimizer)
        return {**logs, "lr": tf.convert_to_tensor(self.g_optimizer.learning_rate)}


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    r = GIPCGANRecipe()
    parser.add_argument("--store", required=True, help="(near, far, gt) store from 'fusion-tf prepare gipcgan'")
    parser.add_argument("--run-dir", required=True, help="checkpoints, recipe.json, log.csv, generator.weights.h5")
    parser.add_argument("--variant", choices=VARIANTS, default=None,
                        help="paper: Tables 1–2 (default for 'gipcgan'); count_matched: Table 4's parameter "
                             "counts (default for 'gipcgan-compact')")
    parser.add_argument("--exchange", choices=EXCHANGES, default=r.exchange,
                        help="encoder information exchange (inferred): every level (W1) or first level only")
    parser.add_argument("--epochs", type=int, default=r.epochs)
    parser.add_argument("--batch-size", type=int, default=r.batch_size)
    parser.add_argument("--d-steps", type=int, default=r.d_steps, help="D updates per G update (same batch)")
    parser.add_argument("--lr", type=float, default=r.learning_rate)
    parser.add_argument("--no-lr-decay", action="store_true", help="constant lr (paper: linear decline)")
    parser.add_argument("--no-shuffle", action="store_true", help="feed patches in store order every epoch")
    parser.add_argument("--seed", type=int, default=r.seed)
    parser.add_argument("--without-int", action="store_true",
                        help="ablation Without_int: drop the intensity adversarial terms (λ1 = λ3 = λ5 = 0)")
    parser.add_argument("--without-gra", action="store_true",
                        help="ablation Without_gra: drop the gradient adversarial terms (λ2 = λ4 = λ6 = 0)")
    parser.add_argument("--lambdas", type=float, nargs=6, metavar=("L1", "L2", "L3", "L4", "L5", "L6"),
                        help="set λ1…λ6 explicitly (default 0.1 1 0.1 1 0.1 1); applied before the ablations")
    parser.add_argument("--d-grad", choices=objective.D_GRAD_MODES, default="signed",
                        help="gradient maps fed to D: signed Laplacian (default) or its magnitude")


def recipe_from_args(args) -> GIPCGANRecipe:
    variant = args.variant or ("count_matched" if getattr(args, "model", None) == COMPACT_MODEL else "paper")
    loss = objective.GIPCGANLossWeights(d_grad=args.d_grad)
    if args.lambdas:
        loss = dataclasses.replace(loss, **{f"lam{i + 1}": v for i, v in enumerate(args.lambdas)})
    loss = loss.ablated(without_int=args.without_int, without_gra=args.without_gra)
    return GIPCGANRecipe(variant=variant, exchange=args.exchange, batch_size=args.batch_size, epochs=args.epochs,
                         d_steps=args.d_steps, learning_rate=args.lr, lr_decay=not args.no_lr_decay,
                         loss=loss, shuffle=not args.no_shuffle, seed=args.seed)


def train(args) -> int:
    """``fusion-tf train gipcgan``: run (or resume) the recipe on a (near, far, gt) store."""
    dist = distribute.from_args(args)  # first: multi-worker collectives must be set up before TF starts
    recipe = recipe_from_args(args)
    store = open_patch_store(args.store, sources=SOURCES)
    recipe = dataclasses.replace(recipe, patch=store.patch)
    spe = steps_per_epoch(store, recipe.batch_size)
    dist.check_batches(recipe.batch_size)
    method = dist.build(lambda: GIPCGANTraining(recipe, total_steps=spe * recipe.epochs))
    # XLA on unless --no-jit: measured 5–9 % faster per iteration on CPU (benchmarks/bench_gipcgan.py);
    # the ≈1 min compile pays off after a few hundred of the recipe's 57,770 steps
    jit = distribute.resolve_jit(getattr(args, "jit", None), True)
    config = LoopConfig(run_dir=args.run_dir, epochs=recipe.epochs, steps_per_epoch=spe, jit_compile=jit,
                        save_every=args.save_every, max_steps=args.max_steps, progress=not args.quiet,
                        distribution=dist, restart=getattr(args, "restart", False))
    print(f"GIPC-GAN ({recipe.variant}): {store.count} triplets of {store.patch}×{store.patch} from {store.path}; "
          f"{spe} steps/epoch × {recipe.epochs} epochs (global batch {recipe.batch_size}); {dist.describe()}; "
          f"recipe {recipe}")

    def make_dataset(epoch: int, skip: int):
        return patch_dataset(store, recipe.batch_size, epoch, shuffle=recipe.shuffle, seed=recipe.seed,
                             skip_batches=skip)

    result = fit(method, make_dataset, config, recipe={**recipe.to_dict(), "store": str(args.store)})
    state = "finished" if result.finished else "paused (resume with the same command)"
    print(f"{state} at step {result.step}: {result.last_logs}; generator weights: {result.weights_path}")
    return 0
