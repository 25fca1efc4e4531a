"""MFF-GAN training: the recipe, the two update steps, and the ``train mffgan`` command."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import keras
import tensorflow as tf

from fusion_tf.data.patches import open_patch_store
from fusion_tf.data.pipeline import patch_dataset, steps_per_epoch
from fusion_tf.models.mffgan import build_discriminator, build_generator
from fusion_tf.objectives import mffgan as objective
from fusion_tf.training import distribute
from fusion_tf.training.loop import AdversarialTraining, LoopConfig, fit, float32


@dataclass(frozen=True)
class MFFGANRecipe:
    """The original's hyper-parameters (spec ``mff_gan.md`` §6); defaults are faithful."""

    batch_size: int = 32
    epochs: int = 20
    d_steps: int = 2  # D updates per G update, all on the same batch (paper: p = 2)
    learning_rate: float = 1e-4
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8  # TF1 Adam default; Keras' 1e-7 would not match
    loss: objective.MFFGANLossWeights = field(default_factory=objective.MFFGANLossWeights)
    shuffle: bool = False  # the original feeds patches in file order
    seed: int = 0
    patch: int = 60

    def adam(self) -> keras.optimizers.Adam:
        return keras.optimizers.Adam(self.learning_rate, beta_1=self.beta_1, beta_2=self.beta_2,
                                     epsilon=self.epsilon)


class MFFGANTraining(AdversarialTraining):
    """Generator, discriminator, two Adams and the soft-label RNG; batches ``{"near", "far"}``.

    ``fused_iteration`` (default True) selects how one iteration is computed, not what it computes:
    see :meth:`iteration`.  False runs the literal formulation (``d_steps`` × :meth:`d_step`, then
    :meth:`g_step`), kept as the reference the fused one is tested against.
    """

    d_share_batch = True

    def __init__(self, recipe: MFFGANRecipe = MFFGANRecipe(), fused_iteration: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.recipe = recipe
        self.d_steps = recipe.d_steps
        self.fused_iteration = fused_iteration
        self.setup_networks(recipe.seed, build_generator, lambda: build_discriminator(recipe.patch),
                            recipe.adam(), recipe.adam())

    # -- the literal formulation: each update computes everything it needs -----------------------
    def d_step(self, batch) -> dict:
        near, far = batch["near"], batch["far"]
        fused = tf.stop_gradient(float32(self.generator([near, far], training=True)))
        return self._d_update(objective.joint_gradient(near, far), objective.fused_gradient(fused))

    def g_step(self, batch) -> dict:
        near, far = batch["near"], batch["far"]
        s_near, s_far = objective.screening_maps(near, far)
        with tf.GradientTape() as tape:
            fused = float32(self.generator([near, far], training=True))
            logs = self._g_loss(fused, near, far, s_near, s_far)
        self.apply_gradients(tape, logs["g_loss"], self.generator.trainable_variables, self.g_optimizer)
        return logs

    # -- the pieces both formulations share -----------------------------------------------------
    def _d_update(self, real, fake) -> dict:
        """One discriminator update on the gradient maps ``real`` (joint) and ``fake`` (|∇F|)."""
        with tf.GradientTape() as tape:
            # real and fake in separate calls: each is normalised with its own batch statistics
            d_real = float32(self.discriminator(real, training=True))
            d_fake = float32(self.discriminator(fake, training=True))
            loss = objective.discriminator_loss(d_real, d_fake, self.rng)
        self.apply_gradients(tape, loss, self.discriminator.trainable_variables, self.d_optimizer)
        return {"d_loss": loss}

    def _g_loss(self, fused, near, far, s_near, s_far) -> dict:
        """The generator's losses for the output ``fused`` (the current discriminator judges it)."""
        l_int, l_grad = objective.content_losses(fused, near, far, s_near, s_far)
        d_fake = float32(self.discriminator(objective.fused_gradient(fused), training=True))
        total, adv, _ = objective.generator_loss(d_fake, l_int, l_grad, self.rng, self.recipe.loss)
        return {"g_loss": total, "g_adv": adv, "l_int": l_int, "l_grad": l_grad}

    def iteration(self, batch) -> dict:
        """``d_steps`` D updates then one G update on one batch, with one generator forward pass.

        Why it is shaped so: every update of an iteration sees the same batch and the *same*
        generator weights (G changes only in the last update, and its network has no batch
        statistics or dropout), so the literal formulation computed the identical output F three
        times — 3 of its 5 generator-sized passes (3 forwards + one backward ≈ 2 forwards), most of
        the step's FLOPs.  Here F is computed once, on the generator's tape, and feeds the D updates
        (as a constant) and the G update (differentiated); the joint gradient map and |∇F| are
        likewise computed once.  Everything stateful keeps its order — soft-label draws (D real,
        D fake per D update, then G), D weight and BN-statistics updates, the G update last — so
        the numbers are the literal formulation's: bit-identical op by op (eagerly), and within
        float rounding (~1e-7) when compiled, where grappler rewrites the two graphs differently —
        as it does the literal formulation compiled vs eager (``tests/test_mffgan_train_step.py``).
        ``bench_train_steps.py --compare-mffgan``: 1.5–1.8× faster per iteration on the 2-core CPU.
        XLA's common-subexpression pass already merged the three forwards, so with ``--jit`` both
        formulations take the same time (and XLA stays slower than oneDNN here).  The loop compiles
        this whole method as one ``tf.function``: no host round trip between the updates.
        """
        if not self.fused_iteration:
            return super().iteration(batch)
        near, far = batch["near"], batch["far"]
        logs = {}
        with tf.GradientTape() as tape:
            fused = float32(self.generator([near, far], training=True))
            with tape.stop_recording():  # D updates: not part of the generator's gradient
                real = objective.joint_gradient(near, far)
                fake = objective.fused_gradient(tf.stop_gradient(fused))
                for _ in range(self.d_steps):
                    logs.update(self._d_update(real, fake))
                s_near, s_far = objective.screening_maps(near, far)
            logs.update(self._g_loss(fused, near, far, s_near, s_far))
        self.apply_gradients(tape, logs["g_loss"], self.generator.trainable_variables, self.g_optimizer)
        return logs


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    r = MFFGANRecipe()
    parser.add_argument("--store", required=True,
                        help="patch store from 'fusion-tf prepare mffgan' (a directory with Train_near/ and "
                             "Train_far/, or an indexed .h5 file); the original's checkpoint/ folder works too")
    parser.add_argument("--run-dir", required=True, help="checkpoints, recipe.json, log.csv, generator.weights.h5")
    parser.add_argument("--epochs", type=int, default=r.epochs)
    parser.add_argument("--batch-size", type=int, default=r.batch_size)
    parser.add_argument("--d-steps", type=int, default=r.d_steps, help="D updates per G update (same batch)")
    parser.add_argument("--lr", type=float, default=r.learning_rate)
    parser.add_argument("--shuffle", action="store_true", help="reshuffle patches every epoch (original: file order)")
    parser.add_argument("--seed", type=int, default=r.seed)


def recipe_from_args(args) -> MFFGANRecipe:
    return MFFGANRecipe(batch_size=args.batch_size, epochs=args.epochs, d_steps=args.d_steps,
                        learning_rate=args.lr, shuffle=args.shuffle, seed=args.seed)


def train(args) -> int:
    """``fusion-tf train mffgan``: run (or resume) the recipe on a patch store."""
    dist = distribute.from_args(args)  # first: multi-worker collectives must be set up before TF starts
    recipe = recipe_from_args(args)
    store = open_patch_store(args.store)
    dist.check_batches(recipe.batch_size)
    method = dist.build(lambda: MFFGANTraining(MFFGANRecipe(**{**recipe.__dict__, "patch": store.patch})))
    spe = steps_per_epoch(store, recipe.batch_size)
    # XLA off by default on CPU: 0.30 s plain vs 0.51 s with XLA per iteration (2-core machine,
    # benchmarks/bench_train_steps.py --compare-mffgan; README, Speed)
    config = LoopConfig(run_dir=args.run_dir, epochs=recipe.epochs, steps_per_epoch=spe,
                        jit_compile=distribute.resolve_jit(getattr(args, "jit", None), False),
                        save_every=args.save_every, max_steps=args.max_steps, progress=not args.quiet,
                        distribution=dist, restart=getattr(args, "restart", False))
    print(f"MFF-GAN: {store.count} patches of {store.patch}×{store.patch} from {store.path}; "
          f"{spe} steps/epoch × {recipe.epochs} epochs (global batch {recipe.batch_size}); {dist.describe()}; "
          f"recipe {recipe}")

    def make_dataset(epoch: int, skip: int):
        return patch_dataset(store, recipe.batch_size, epoch, shuffle=recipe.shuffle, seed=recipe.seed,
                             skip_batches=skip)

    result = fit(method, make_dataset, config, recipe={**recipe.__dict__, "loss": recipe.loss.__dict__,
                                                         "store": str(args.store), "patch": store.patch})
    state = "finished" if result.finished else "paused (resume with the same command)"
    print(f"{state} at step {result.step}: {result.last_logs}; generator weights: {result.weights_path}")
    return 0
