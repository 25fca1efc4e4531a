"""Generic training loop for the four methods: custom ``tf.function`` steps, resumable runs.

A paper's training model subclasses :class:`TrainingMethod` and only says *what* one update does
(``d_step`` / ``g_step``); this module decides *when* they run and takes care of everything a run
needs around them:

* **update schedule** — ``d_steps`` discriminator updates per generator update, either all on one
  batch (MFF-GAN, GIPC-GAN: ``d_share_batch=True``) or one batch per critic update (MFIF-GAN's
  WGAN-GP 5:1); ``d_steps = 0`` is plain supervised training (GACN);
* **XLA** — ``jit_compile`` per run (training batches have one fixed shape, so it compiles once);
* **devices** — an optional :class:`~fusion_tf.training.distribute.Distribution` (``--strategy``):
  per-replica batches, steps run on every replica, logs reduced, checkpoints written by the chief;
* **checkpoints** — ``tf.train.CheckpointManager`` over networks, optimizer slots, RNG state and the
  step counter, so an interrupted run resumes at the same step with the same optimizer state and the
  same data order; Ctrl-C or SIGTERM (``kill``, a batch scheduler's pre-emption, a background run
  that ignores Ctrl-C) saves before exiting; the run's recipe is stored as ``recipe.json``;
* **never losing a run** — at least the two newest checkpoints are kept; resuming finds them from the
  files on disk (not only the ``checkpoint`` index file), reads each candidate completely and falls
  back to the newest intact one with one warning; a run folder with checkpoints or logged steps is
  never silently restarted from step 0 (``restart=True`` / ``--restart`` deletes them first);
* **NaN guard** — a non-finite loss stops the run *without* saving, so the last good checkpoint is
  what remains (``TrainingDiverged``, exit code 2 on the CLI);
* **logging** — progress bar, ``log.csv`` (trimmed on resume so it never holds steps that were
  rolled back; written atomically *before* each checkpoint, so a kill never loses a row),
  TensorBoard scalars when ``tensorboard`` is installed (it is optional in TF 2.21).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
import os
import re
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras
import tensorflow as tf

from fusion_tf.core.imageio import atomic_path
from fusion_tf.errors import FusionError, TrainingDiverged
from fusion_tf.training.distribute import Distribution, replica_weight


def float32(x):
    """Network outputs as float32 before they reach a loss (a no-op unless mixed precision is on)."""
    return tf.nest.map_structure(lambda t: tf.cast(t, tf.float32), x)


def prepare_optimizer(optimizer: keras.optimizers.Optimizer, variables) -> keras.optimizers.Optimizer:
    """Wrap in a LossScaleOptimizer under the ``mixed_float16`` policy (float16 gradients underflow
    without it; bfloat16 has float32's range and needs none), then build the slots explicitly: needed
    under tf.distribute, and lets a checkpoint restore the slots at once."""
    if keras.mixed_precision.global_policy().name == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(variables)
    return optimizer


def apply_gradients(tape: tf.GradientTape, loss, variables, optimizer: keras.optimizers.Optimizer) -> None:
    """``optimizer.apply(tape.gradient(loss, variables))`` with two scale factors on the loss.

    * replica weight: steps compute the mean loss of *their* batch; inside a distributed step each
      replica's gradient is weighted by its share of the global batch, so the optimizer's all-reduce
      (a sum) gives the one-device gradient of the global-batch mean;
    * mixed float16: the LossScaleOptimizer's dynamic loss scale (``apply`` unscales and skips
      non-finite steps).

    Both enter as ``output_gradients`` (the seed of back-propagation), so the steps' losses and what
    they log stay unscaled, and on one device in float32 the computation is exactly the plain one.
    """
    seed = replica_weight()
    if seed is not None:
        seed = tf.cast(seed, loss.dtype)
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        seed = optimizer.scale_loss(tf.ones_like(loss) if seed is None else seed)
    optimizer.apply(tape.gradient(loss, variables, output_gradients=seed), variables)


class TrainingMethod(keras.Model):
    """Base of a paper's trainable model: networks, optimizers and RNGs plus its update rules.

    Subclasses set ``d_steps`` / ``d_share_batch``, implement :meth:`g_step` (and :meth:`d_step` for
    GANs), and list what a checkpoint must hold in :meth:`checkpoint_items`.  Steps return dicts of
    scalar tensors, which are logged under their keys.
    """

    #: discriminator (critic) updates per generator update; 0 = no discriminator
    d_steps: int = 0
    #: True: all D updates and the G update of an iteration use one batch; False: one batch each
    d_share_batch: bool = True

    def d_step(self, batch) -> dict:
        raise NotImplementedError

    def g_step(self, batch) -> dict:
        raise NotImplementedError

    def checkpoint_items(self) -> dict:
        """Trackables saved in every checkpoint (networks, optimizers, RNGs)."""
        raise NotImplementedError

    def inference_model(self) -> keras.Model:
        """The network whose weights ``fuse`` needs (saved as ``<name>.weights.h5``)."""
        raise NotImplementedError

    def apply_gradients(self, tape: tf.GradientTape, loss, variables, optimizer) -> None:
        """Steps update through this (replica weight and loss scale, see :func:`apply_gradients`)."""
        apply_gradients(tape, loss, variables, optimizer)

    def iteration(self, batch) -> dict:
        """One shared-batch iteration: ``d_steps`` D updates then one G update."""
        logs = {}
        for _ in range(self.d_steps):
            logs.update(self.d_step(batch))
        logs.update(self.g_step(batch))
        return logs


class AdversarialTraining(TrainingMethod):
    """A GAN's training model: generator, discriminator, one optimizer each and one RNG.

    Subclasses call :meth:`setup_networks` in ``__init__`` and implement the two steps; what a
    checkpoint holds and which network ``fuse`` needs are the same for every GAN here.
    """

    def setup_networks(self, seed: int, build_generator: Callable[[], keras.Model],
                       build_discriminator: Callable[[], keras.Model], g_optimizer, d_optimizer) -> None:
        keras.utils.set_random_seed(seed)  # same seed → same initial weights → reproducible run
        self.generator = build_generator()
        self.discriminator = build_discriminator()
        self.g_optimizer = prepare_optimizer(g_optimizer, self.generator.trainable_variables)
        self.d_optimizer = prepare_optimizer(d_optimizer, self.discriminator.trainable_variables)
        self.rng = tf.random.Generator.from_seed(seed)

    def checkpoint_items(self) -> dict:
        return {"generator": self.generator, "discriminator": self.discriminator,
                "g_optimizer": self.g_optimizer, "d_optimizer": self.d_optimizer, "rng": self.rng}

    def inference_model(self) -> keras.Model:
        return self.generator


@dataclass
class LoopConfig:
    """How to run (not *what* to optimise: that is the paper's recipe)."""

    run_dir: str
    epochs: int
    steps_per_epoch: int
    jit_compile: bool = False
    save_every: int = 0  # steps between checkpoints (0: once per epoch)
    max_steps: int | None = None  # stop early (smoke runs, split long recipes); resumable
    keep_checkpoints: int = 3  # at least 2 are always kept: one damaged file must not lose the run
    progress: bool = True
    #: devices and precision (None: one device, as built); the method must come from its ``build``
    distribution: Distribution | None = None
    #: delete this run's checkpoints and log first, then train from step 0.  Without it a run folder
    #: that has checkpoints or logged steps is resumed or refused, never silently started over.
    #: Give it to the first ``fit`` of a command only (GACN calls ``fit`` once per epoch).
    restart: bool = False


@dataclass
class FitResult:
    step: int
    finished: bool
    last_logs: dict
    seconds: float
    weights_path: str | None


LOG_NAME = "log.csv"
CHECKPOINT_NAME = "ckpt"  # tf.train.CheckpointManager's default prefix: RUN/checkpoints/ckpt-N


def _log_temp_files(run_dir: Path) -> list[Path]:
    """Temp files of ``log.csv`` writes (ours and :func:`atomic_path`'s), left only by a killed run."""
    return sorted(run_dir.glob(f".{LOG_NAME}.*"))


def _write_text_atomic(path: Path, text: str) -> None:
    """Temp file in the same folder, fsync, ``os.replace``: a kill leaves the old or the new file,
    never a torn one, and an exception leaves no temp file behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX; best effort elsewhere)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _read_log(path: Path) -> list[dict]:
    """Rows of ``log.csv``; a damaged log is a one-line error, not a traceback."""
    if not path.is_file():
        return []
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        for r in rows:
            int(r["step"])
    except (KeyError, TypeError, ValueError, csv.Error) as exc:
        raise FusionError(f"{path} is damaged ({exc}); move it away to resume without it") from None
    return rows


class _Scalars:
    """CSV log plus optional TensorBoard; the CSV is trimmed to the restored step on resume."""

    def __init__(self, run_dir: Path, resume_step: int, enabled: bool = True):
        self.path = run_dir / LOG_NAME
        self.rows: list[dict] = []
        self.enabled = enabled
        self.writer = None
        if not enabled:  # non-chief workers: the chief logs the (identical, reduced) scalars
            return
        for stale in _log_temp_files(run_dir):  # a run killed mid-write; log.csv itself is intact
            stale.unlink(missing_ok=True)
        self.rows = [r for r in _read_log(self.path) if int(r["step"]) <= resume_step]
        try:
            import tensorboard  # noqa: F401  (optional extra)

            self.writer = tf.summary.create_file_writer(str(run_dir / "tensorboard"))
        except ImportError:
            pass

    def add(self, step: int, logs: dict, seconds: float) -> None:
        if not self.enabled:
            return
        self.rows.append({"step": step, **{k: f"{v:.8g}" for k, v in logs.items()}, "seconds": f"{seconds:.4f}"})
        if self.writer is not None:
            with self.writer.as_default(step=step):
                for k, v in logs.items():
                    tf.summary.scalar(k, v)

    def flush(self) -> None:
        if not self.enabled or not self.rows:
            return
        fields = list(dict.fromkeys(k for r in self.rows for k in r))
        buf = io.StringIO(newline="")
        w = csv.DictWriter(buf, fieldnames=fields)
        w.writeheader()
        w.writerows(self.rows)
        _write_text_atomic(self.path, buf.getvalue())
        if self.writer is not None:
            self.writer.flush()


# ----------------------------------------------------------------------------------------------
# Finding the checkpoint to resume from
# ----------------------------------------------------------------------------------------------
def _listed_steps(ckpt_dir: Path) -> tuple[list[int], bool]:
    """Steps named in the ``checkpoint`` index file, and whether that file is unreadable.

    Parsed here rather than by TF, which logs "Checkpoint ignored" (or raises ValueError on an empty
    file) and then starts from scratch.
    """
    path = ckpt_dir / "checkpoint"
    if not path.is_file():
        return [], False
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return [], True
    line = re.compile(r'^\s*(\w+)\s*:\s*("(?:[^"\\]|\\.)*"|[-+0-9.eE]+)\s*$')
    steps, latest, garbled = [], None, False
    for raw in text.splitlines():
        if not raw.strip():
            continue
        m = line.match(raw)
        if not m:
            garbled = True
            continue
        key, value = m.groups()
        n = re.search(rf"(?:^|/){CHECKPOINT_NAME}-(\d+)$", value[1:-1]) if value.startswith('"') else None
        if key in ("model_checkpoint_path", "all_model_checkpoint_paths") and n:
            steps.append(int(n.group(1)))
            latest = latest if key == "all_model_checkpoint_paths" else int(n.group(1))
    return sorted(set(steps)), garbled or latest is None


def _checkpoint_damage(prefix: Path) -> str | None:
    """Why the checkpoint at ``prefix`` cannot be restored, or None when every tensor reads back.

    Every tensor is read (checksummed): a truncated ``.data`` file otherwise surfaces mid-restore as
    a raw ``IndexError`` after some variables were already overwritten.
    """
    if not prefix.with_name(prefix.name + ".index").is_file():
        return "no .index file"
    if not list(prefix.parent.glob(prefix.name + ".data-*")):
        return "no .data file"
    try:
        reader = tf.train.load_checkpoint(str(prefix))
        for key in reader.get_variable_to_shape_map():
            reader.get_tensor(key)
    except Exception as exc:  # noqa: BLE001 — any failure means "not restorable"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"unreadable: {first.replace(str(prefix.parent) + os.sep, '')[:120]}"
    return None


def _disk_steps(ckpt_dir: Path) -> list[int]:
    """Steps with any ``ckpt-N.index`` / ``ckpt-N.data-*`` file on disk."""
    pattern = re.compile(rf"^{CHECKPOINT_NAME}-(\d+)\.(?:index|data-\d+-of-\d+)$")
    if not ckpt_dir.is_dir():
        return []
    return sorted({int(m.group(1)) for f in ckpt_dir.iterdir() if (m := pattern.match(f.name))})


@dataclass
class ResumePoint:
    """What :func:`find_resume_checkpoint` decided: the prefix to restore (None: no checkpoint at all)."""

    prefix: Path | None
    step: int
    skipped: dict  # {step: reason} of newer checkpoints that cannot be restored
    index_garbled: bool
    intact_older: list  # steps below ``step`` with an .index file (listed in a rewritten index)
    index_ok: bool = True  # the index file names exactly this checkpoint as the latest

    def warning(self, ckpt_dir: Path) -> str | None:
        parts = [f"{CHECKPOINT_NAME}-{n} ({why})" for n, why in sorted(self.skipped.items(), reverse=True)]
        if self.index_garbled:
            parts.append("an unreadable 'checkpoint' index file (rewritten)")
        if not parts:
            return None
        return f"warning: {ckpt_dir}: resuming from {CHECKPOINT_NAME}-{self.step}, skipped " + "; ".join(parts)


def find_resume_checkpoint(ckpt_dir: str | os.PathLike) -> ResumePoint:
    """The newest restorable checkpoint in ``ckpt_dir``, from the files on disk and the index file.

    Raises :class:`FusionError` when checkpoints exist but none can be restored; touches nothing.
    """
    ckpt_dir = Path(ckpt_dir)
    listed, garbled = _listed_steps(ckpt_dir)
    on_disk = _disk_steps(ckpt_dir)
    candidates = sorted(set(listed) | set(on_disk), reverse=True)
    skipped: dict = {}
    for n in candidates:
        prefix = ckpt_dir / f"{CHECKPOINT_NAME}-{n}"
        why = _checkpoint_damage(prefix) if n in on_disk else "its files are missing"
        if why is None:
            older = [m for m in on_disk if m < n and (ckpt_dir / f"{CHECKPOINT_NAME}-{m}.index").is_file()]
            index_ok = not garbled and listed[-1:] == [n] and set(listed) <= set(older) | {n}
            return ResumePoint(prefix, n, skipped, garbled, older, index_ok)
        skipped[n] = why
    if candidates:
        details = "; ".join(f"{CHECKPOINT_NAME}-{n}: {why}" for n, why in skipped.items())
        raise FusionError(f"cannot resume {ckpt_dir.parent}: no intact checkpoint ({details}); restore the files, "
                          f"or pass --restart to delete them and start over")
    return ResumePoint(None, 0, {}, garbled, [], not garbled)


def _write_checkpoint_index(ckpt_dir: Path, point: ResumePoint) -> None:
    """Rewrite the ``checkpoint`` index file for ``point``, so the manager keeps rotating the old
    checkpoints (with timestamps: without them ``CheckpointManager`` never deletes any)."""
    steps = [*point.intact_older, point.step]
    stamps = [(ckpt_dir / f"{CHECKPOINT_NAME}-{n}.index").stat().st_mtime for n in steps]
    now = time.time()
    stamps = [min(t, now) for t in stamps]
    lines = [f'model_checkpoint_path: "{CHECKPOINT_NAME}-{point.step}"']
    lines += [f'all_model_checkpoint_paths: "{CHECKPOINT_NAME}-{n}"' for n in steps]
    lines += [f"all_model_checkpoint_timestamps: {t!r}" for t in stamps]
    lines.append(f"last_preserved_timestamp: {min(stamps) - 1.0!r}")
    _write_text_atomic(ckpt_dir / "checkpoint", "\n".join(lines) + "\n")


def clear_run(run_dir: str | os.PathLike) -> None:
    """Delete what training wrote into ``run_dir`` — checkpoints, ``log.csv``, TensorBoard events —
    and say so in one printed line (``--restart``).  Weights files are overwritten by the next save."""
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    n_ckpt = len(_disk_steps(ckpt_dir))
    log = run_dir / LOG_NAME
    n_rows = max(0, len(log.read_bytes().splitlines()) - 1) if log.is_file() else 0  # damaged or not
    if ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)
    for path in [run_dir / LOG_NAME, *_log_temp_files(run_dir)]:
        path.unlink(missing_ok=True)
    if (run_dir / "tensorboard").is_dir():
        shutil.rmtree(run_dir / "tensorboard")
    if n_ckpt or n_rows:
        print(f"restart: deleted {n_ckpt} checkpoint(s) and {n_rows} logged step(s) in {run_dir}; "
              f"training from step 0")


def save_recipe(run_dir: Path, recipe) -> dict:
    """Write ``recipe.json`` (the dataclass or dict that defines the run) and return it as a dict."""
    data = dataclasses.asdict(recipe) if dataclasses.is_dataclass(recipe) else dict(recipe)
    path = run_dir / "recipe.json"
    if path.is_file():
        old = json.loads(path.read_text())
        changed = {k: (old.get(k), v) for k, v in data.items() if old.get(k) != v and k != "loop"}
        if changed:
            print(f"note: resuming {run_dir} with changed settings {changed}")
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return data


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Inside the block SIGTERM raises KeyboardInterrupt, so ``kill`` saves like Ctrl-C does.

    Why: jobs started in the background (``cmd &``) ignore SIGINT, and schedulers stop jobs with
    SIGTERM; without this a stopped run loses every step since its last checkpoint.
    """
    if threading.current_thread() is not threading.main_thread():  # signals only reach the main thread
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def fit(
    method: TrainingMethod,
    make_dataset: Callable[[int, int], tf.data.Dataset],
    config: LoopConfig,
    recipe=None,
    weights_name: str = "generator",
) -> FitResult:
    """Train ``method`` from ``make_dataset(epoch, skip_batches)`` batches; resume if possible.

    The step counter counts *batches consumed*; epoch = step // steps_per_epoch.  Checkpoints land
    in ``run_dir/checkpoints``; the inference network's weights in ``run_dir/<weights_name>.weights.h5``
    at every checkpoint, so ``fuse --weights run_dir`` always sees a consistent, complete file.
    """
    run_dir = Path(config.run_dir)
    ckpt_dir = run_dir / "checkpoints"
    dist = config.distribution or Distribution()
    chief = dist.is_chief
    if config.steps_per_epoch <= 0:
        raise FusionError("the training set gives no full batch: add data or lower the batch size")
    if config.restart:
        if chief:
            clear_run(run_dir)
        point = ResumePoint(None, 0, {}, False, [])
    else:
        # decided before anything is written: a refused run leaves its folder exactly as it was
        point = find_resume_checkpoint(ckpt_dir)
        if point.prefix is None and _read_log(run_dir / LOG_NAME):
            raise FusionError(f"{run_dir} has logged steps in {LOG_NAME} but no checkpoint to resume from; "
                              f"pass --restart to start over (deletes them), or use a new run folder")
    if chief:
        run_dir.mkdir(parents=True, exist_ok=True)
        if point.prefix is None and point.index_garbled:
            (ckpt_dir / "checkpoint").unlink(missing_ok=True)  # no checkpoint behind it: nothing to lose
        elif point.prefix is not None and not point.index_ok:
            _write_checkpoint_index(ckpt_dir, point)  # before the manager reads it
    if recipe is not None and chief:
        save_recipe(run_dir, recipe)

    step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    ckpt = tf.train.Checkpoint(step=step_var, **method.checkpoint_items())
    # every worker restores the chief's checkpoints; only the chief's manager writes there.  Two at
    # least: the newest may be damaged (a kill mid-save, a full disk) and the previous one saves the run
    manager = tf.train.CheckpointManager(ckpt, str(ckpt_dir), max_to_keep=max(2, config.keep_checkpoints))
    if point.prefix is not None:
        warning = point.warning(ckpt_dir)
        if warning and chief:
            print(warning, file=sys.stderr, flush=True)
        try:
            ckpt.restore(str(point.prefix)).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as exc:
            raise FusionError(f"cannot resume from {point.prefix}: {str(exc).splitlines()[0]}") from None
        print(f"resumed from {point.prefix} at step {int(step_var.numpy())}")
    step = int(step_var.numpy())
    total = config.epochs * config.steps_per_epoch
    stop_at = min(total, config.max_steps) if config.max_steps is not None else total
    scalars = _Scalars(run_dir, step, enabled=chief)
    weights_path = run_dir / f"{weights_name}.weights.h5"

    def save() -> None:
        step_var.assign(step)
        # the log first: killed between the two, the resumed run trims the log back to the checkpoint;
        # the other way round the rows between the previous save and this checkpoint would be lost
        scalars.flush()
        with dist.write_dir(run_dir) as out:
            writer = manager if chief else tf.train.CheckpointManager(ckpt, str(out / "checkpoints"), max_to_keep=1)
            writer.save(checkpoint_number=step)
            with atomic_path(out / weights_path.name) as tmp:
                method.inference_model().save_weights(str(tmp))

    jit = config.jit_compile
    if jit and dist.distributed:
        # measured: XLA inside MirroredStrategy on logical CPUs fails (resource on CPU:1 read from CPU:0)
        print(f"note: --strategy {dist.name} trains without XLA (XLA with tf.distribute replicas is not supported here)")
        jit = False

    def compiled(step_fn):
        if dist.distributed:
            return tf.function(dist.replicated(step_fn), jit_compile=False)
        return tf.function(step_fn, jit_compile=jit)

    if method.d_steps and not method.d_share_batch:
        d_fn = compiled(method.d_step)
        g_fn = compiled(method.g_step)

        def run_batch(batch, step):
            logs = dict(d_fn(batch))
            if (step + 1) % method.d_steps == 0:
                logs.update(g_fn(batch))
            return logs
    else:
        it_fn = compiled(method.iteration)

        def run_batch(batch, step):
            return it_fn(batch)

    bar = None
    if config.progress and chief:
        from tqdm import tqdm

        bar = tqdm(total=stop_at, initial=step, unit="step", dynamic_ncols=True, mininterval=1.0)
    start = time.perf_counter()
    last_logs: dict = {}
    last_saved = step
    with _sigterm_as_interrupt():
        try:
            while step < stop_at:
                epoch, skip = divmod(step, config.steps_per_epoch)
                for batch in dist.distribute_dataset(make_dataset(epoch, skip)):
                    t0 = time.perf_counter()
                    logs = {k: float(v) for k, v in run_batch(batch, step).items()}
                    bad = [k for k, v in logs.items() if not math.isfinite(v)]
                    if bad:
                        raise TrainingDiverged(
                            f"loss {bad[0]} = {logs[bad[0]]} at step {step + 1}; stopped without saving, "
                            f"last good checkpoint: {manager.latest_checkpoint or 'none'}"
                        )
                    step += 1
                    last_logs = logs
                    scalars.add(step, logs, time.perf_counter() - t0)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix({k: f"{v:.4g}" for k, v in list(logs.items())[:4]}, refresh=False)
                    end_of_epoch = step % config.steps_per_epoch == 0
                    if (config.save_every and step % config.save_every == 0) or end_of_epoch:
                        save()
                        last_saved = step
                    if step >= stop_at or end_of_epoch:
                        break
        except KeyboardInterrupt:
            if step > last_saved:
                save()
            print(f"\ninterrupted: saved step {step} in {run_dir}; run the same command to resume")
            raise
        finally:
            if bar is not None:
                bar.close()
    if step > last_saved:
        save()
    return FitResult(step=step, finished=step >= total, last_logs=last_logs,
                     seconds=time.perf_counter() - start, weights_path=str(weights_path))

