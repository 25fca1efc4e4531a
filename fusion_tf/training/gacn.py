"""GACN training: the recipe, one supervised update, validation, and the ``train gacn`` command.

Facts: ``../shared/spec/gacn.md`` §4–§5.  The generic loop (:mod:`fusion_tf.training.loop`) runs the
steps, checkpoints (network, Adam slots, synthesis RNG, step), resumes and guards against NaN; this
module adds what GACN needs on top: the ×0.8-every-2-epochs learning rate (a staircase schedule on
the optimizer's own iteration counter, so it survives resume), and per-epoch validation with
best-validation model selection (``gacn_best.weights.h5``, the released weights were such a pick).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from fusion_tf.core.imageio import atomic_path
from fusion_tf.data import gacn as data
from fusion_tf.models.gacn import GACN, build_gacn
from fusion_tf.objectives.gacn import gacn_loss
from fusion_tf.training import distribute, loop
from fusion_tf.training.loop import LoopConfig, TrainingMethod, apply_gradients, fit, float32, prepare_optimizer

BEST_WEIGHTS = "gacn_best.weights.h5"


@dataclass(frozen=True)
class GACNRecipe:
    """The original's hyper-parameters; defaults are faithful (saved as ``recipe.json`` with the run)."""

    batch_size: int = 16
    epochs: int = 50
    learning_rate: float = 1e-4
    lr_decay: float = 0.8  # lr = 1e-4 · 0.8^(epoch // 2)
    lr_decay_epochs: int = 2
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8  # PyTorch adds it to √v̂, Keras to √v: negligible
    lambda_qg: float = 1.0
    crop: int = data.CROP_SIZE
    blur_radii: tuple[int, int] = (1, data.MAX_BLUR_RADIUS)
    blur_sigma: float = data.BLUR_SIGMA
    matte_sigma_radius: tuple[float, int] = (data.MATTE_SIGMA, data.MATTE_RADIUS)
    max_offset: int = data.OFFSET
    max_noise_std: float = data.MAX_NOISE_STD
    seed: int = 1
    model_selection: str = "lowest validation loss"

    def steps_per_epoch(self, train_count: int) -> int:
        """The last partial batch is kept (4,050 images → 254 steps)."""
        return math.ceil(train_count / self.batch_size)

    def lr_schedule(self, steps_per_epoch: int) -> keras.optimizers.schedules.LearningRateSchedule:
        """Staircase on the optimizer's iteration counter: restored with it, so resume keeps the lr."""
        return keras.optimizers.schedules.ExponentialDecay(
            self.learning_rate, decay_steps=self.lr_decay_epochs * steps_per_epoch,
            decay_rate=self.lr_decay, staircase=True,
        )

    def adam(self, steps_per_epoch: int) -> keras.optimizers.Adam:
        return keras.optimizers.Adam(self.lr_schedule(steps_per_epoch), beta_1=self.beta_1, beta_2=self.beta_2,
                                     epsilon=self.epsilon)


def train_step(model: GACN, optimizer: keras.optimizers.Optimizer, batch, rng: tf.random.Generator,
               lambda_qg: float = 1.0) -> dict:
    """One update: synthesise the pair in-graph, forward (BN in training mode, features per image), step.

    Under a strategy each replica synthesises its own slice (own blur radius, offset, noise, swap)
    and its Dice is over its slice: see docs/distributed.md.
    """
    image, mask = batch
    img1, img2, gt = data.synthesize_batch(image, mask, rng)
    with tf.GradientTape() as tape:
        origin, bgf, _ = float32(model((img1, img2), training=True))
        total, dice, qg = gacn_loss(img1, img2, origin, bgf, gt, lambda_qg)
    apply_gradients(tape, total, model.trainable_variables, optimizer)
    return {"loss": total, "dice": dice, "qg": qg}


def validation_loss(model: GACN, dataset, count: int, batch_size: int, lambda_qg: float = 1.0) -> dict:
    """The original's validation score: Σ batch losses / N_val · batch size (BN in inference mode)."""

    @tf.function
    def step(image, mask, radius):
        img1, img2, gt = data.synthesize_validation(image, mask, radius)
        origin, bgf, _ = float32(model((img1, img2), training=False))
        return gacn_loss(img1, img2, origin, bgf, gt, lambda_qg)

    sums = [0.0, 0.0, 0.0]
    for image, mask, radius in dataset:
        for i, v in enumerate(step(image, mask, radius)):
            sums[i] += float(v)
    scale = batch_size / max(count, 1)
    return {"val_loss": sums[0] * scale, "val_dice": sums[1] * scale, "val_qg": sums[2] * scale}


class GACNTraining(TrainingMethod):
    """GACN, its Adam and the pair-synthesis RNG; batches ``(image, mask)`` from the loader."""

    d_steps = 0

    def __init__(self, recipe: GACNRecipe, steps_per_epoch: int, **kwargs):
        super().__init__(**kwargs)
        self.recipe = recipe
        keras.utils.set_random_seed(recipe.seed)  # same seed → same initial weights
        self.net = build_gacn()
        self.optimizer = prepare_optimizer(recipe.adam(steps_per_epoch), self.net.trainable_variables)
        self.rng = tf.random.Generator.from_seed(recipe.seed)

    def checkpoint_items(self) -> dict:
        return {"gacn": self.net, "optimizer": self.optimizer, "rng": self.rng}

    def inference_model(self) -> keras.Model:
        return self.net

    def g_step(self, batch) -> dict:
        logs = train_step(self.net, self.optimizer, batch, self.rng, self.recipe.lambda_qg)
        logs["lr"] = self.optimizer.learning_rate
        return logs


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``fusion-tf train gacn`` (the loop options --jit/--max-steps/… come from the CLI)."""
    r = GACNRecipe()
    parser.add_argument("--store", required=True, help="HDF5 store from 'fusion-tf prepare gacn'")
    parser.add_argument("--run-dir", required=True,
                        help="checkpoints, recipe.json, log.csv, val.csv, gacn.weights.h5 (latest), "
                             f"{BEST_WEIGHTS} (lowest validation loss)")
    parser.add_argument("--epochs", type=int, default=r.epochs)
    parser.add_argument("--batch-size", type=int, default=r.batch_size)
    parser.add_argument("--lr", type=float, default=r.learning_rate, help="initial learning rate (×0.8 every 2 epochs)")
    parser.add_argument("--seed", type=int, default=r.seed)
    parser.add_argument("--crop", type=int, default=r.crop,
                        help=f"training crop size (original {r.crop}; smaller only for smoke tests on tiny stores)")


def _current_step(run_dir: Path) -> int:
    """The step training resumes at: the newest *intact* checkpoint, as :func:`fit` will choose it."""
    return loop.find_resume_checkpoint(run_dir / "checkpoints").step


def _restart(run_dir: Path) -> None:
    """``--restart``: the loop's files plus GACN's validation record and best weights.  Done once here,
    not through ``LoopConfig.restart``, because GACN calls :func:`fit` once per epoch."""
    loop.clear_run(run_dir)
    for name in ("val.csv", "best.json", BEST_WEIGHTS):
        (run_dir / name).unlink(missing_ok=True)


def _validated_epochs(run_dir: Path) -> set[int]:
    path = run_dir / "val.csv"
    if not path.is_file():
        return set()
    return {int(line.split(",")[0]) for line in path.read_text().splitlines()[1:] if line.strip()}


def _record_validation(run_dir: Path, net: GACN, epoch: int, scores: dict, write: bool = True) -> bool:
    """Append to ``val.csv``; keep the best epoch's weights.  Returns whether this epoch is the best.

    ``write=False`` (non-chief workers): decide only; the chief writes.
    """
    best_file = run_dir / "best.json"
    best = json.loads(best_file.read_text()) if best_file.is_file() else None
    improved = best is None or scores["val_loss"] < best["val_loss"]
    if not write:
        return improved
    if improved:
        with atomic_path(run_dir / BEST_WEIGHTS) as tmp:
            net.save_weights(str(tmp))
        with atomic_path(best_file) as tmp:
            tmp.write_text(json.dumps({"epoch": epoch, **scores}, indent=2) + "\n")
    csv_path = run_dir / "val.csv"
    header = "" if csv_path.is_file() else "epoch,val_loss,val_dice,val_qg\n"
    with open(csv_path, "a") as fh:
        fh.write(header + f"{epoch},{scores['val_loss']:.8g},{scores['val_dice']:.8g},{scores['val_qg']:.8g}\n")
    return improved


def train(args) -> int:
    """``fusion-tf train gacn``: run or resume the recipe, validating after every epoch."""
    dist = distribute.from_args(args)  # first: multi-worker collectives must be set up before TF starts
    recipe = GACNRecipe(batch_size=args.batch_size, epochs=args.epochs, learning_rate=args.lr, seed=args.seed,
                        crop=args.crop)
    store = data.open_store(args.store, crop=recipe.crop)
    run_dir = Path(args.run_dir)
    spe = recipe.steps_per_epoch(len(store.train))
    dist.check_batches(recipe.batch_size, len(store.train), keep_partial=True)
    method = dist.build(lambda: GACNTraining(recipe, spe))
    total = recipe.epochs * spe
    stop = min(total, args.max_steps) if getattr(args, "max_steps", None) else total
    jit = distribute.resolve_jit(getattr(args, "jit", None), False)
    print(f"GACN: {len(store.train)} train / {len(store.val)} val images from {store.path}; "
          f"{spe} steps/epoch × {recipe.epochs} epochs (global batch {recipe.batch_size}); {dist.describe()}; "
          f"recipe {recipe}")

    def make_dataset(epoch: int, skip: int):
        return data.train_dataset(store, recipe.batch_size, epoch, recipe.seed, skip, crop=recipe.crop)

    record = {**dataclasses.asdict(recipe), "store": str(store.path), "store_attrs": {
        k: (v if isinstance(v, (str, int, float)) else str(v)) for k, v in store.attrs.items()}}
    validated = _validated_epochs(run_dir)

    def validate_if_due(step: int) -> None:
        epoch = step // spe
        if step == 0 or step % spe or epoch in validated:
            return
        scores = validation_loss(method.net, data.val_dataset(store, recipe.batch_size), len(store.val),
                                 recipe.batch_size, recipe.lambda_qg)
        best = _record_validation(run_dir, method.net, epoch, scores, write=dist.is_chief)
        validated.add(epoch)
        print(f"epoch {epoch}: " + ", ".join(f"{k} {v:.5f}" for k, v in scores.items()) + (" (best)" if best else ""))

    if getattr(args, "restart", False):
        _restart(run_dir)
    step = _current_step(run_dir)
    validate_if_due(step)  # an interrupted run may have saved an epoch without validating it
    while step < stop:
        # one fit() call per epoch, so validation and model selection run between epochs
        epoch_end = min(stop, (step // spe + 1) * spe)
        config = LoopConfig(run_dir=str(run_dir), epochs=recipe.epochs, steps_per_epoch=spe, jit_compile=jit,
                            save_every=getattr(args, "save_every", 0) or 0, max_steps=epoch_end,
                            progress=not getattr(args, "quiet", False), distribution=dist)
        step = fit(method, make_dataset, config, recipe=record, weights_name="gacn").step
        validate_if_due(step)
    state = "finished" if step >= total else "paused (resume with the same command)"
    print(f"{state} at step {step}; latest weights {run_dir / 'gacn.weights.h5'}; best {run_dir / BEST_WEIGHTS}")
    return 0
