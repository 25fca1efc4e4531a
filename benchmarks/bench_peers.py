"""Side by side with the tools users compare us with: enfuse (+ align_image_stack), in one run.

    python benchmarks/bench_peers.py [--only lytro,synthetic,pcb] [--models mffgan,gacn] [--out DIR]

Needs Hugin's command-line tools (Debian: ``apt-get install -y enfuse hugin-tools``); without them it
says so and exits 0 (nothing is measured).  Every figure comes from this one run, so the ratios are
comparable even on a shared, noisy machine; the machine and its load are printed with the results.

Workloads
* ``lytro``: the 10 odd Lytro pairs (the fixed test split).  enfuse with Hugin's focus-stacking
  recipe, one process per pair (how it is used); ours as ``fusion-tf fuse --batch`` (one process,
  model loaded once) — whole command and steady-state seconds per pair from ``batch.csv``.  Scores:
  qabf, qg_toolbox, qcb (no-reference, two sources).
* ``synthetic``: a misaligned 5-frame stack made from one sharp image (known shifts, rotation, 2 %
  scale steps, a different region in focus per frame).  Ground truth is the sharp image, so the
  fused result is scored by PSNR and mean absolute error against it on the area every tool keeps,
  and our registration by its RMS corner error against the known transforms.
* ``speed``: issue 18's table, each row against enfuse in the same run.  (1) the 20 Lytro pairs:
  enfuse one process per pair vs one ``fuse --batch`` process (MFF-GAN on TF, MFF-GAN with
  ``--backend onnxruntime`` and a cached conversion, GACN): whole command including start-up, and
  steady-state seconds per pair (median of ``batch.csv`` after the first pair), plus qabf; (2) start-up:
  one pair, one process (median of 3); (3) the 65-frame 1600×1200 stack (``stack_v4``; ``--frames``
  takes fewer): enfuse vs GACN calibration, wall time and peak RSS of each process (GNU time).
* ``pcb``: the real hand-held 7-frame stack (2048×1536).  align_image_stack + enfuse vs ``fuse
  --align affine`` (and without ``--align``, to show the ghosting), timed; a figure of the four
  results (ours aligned, ours unaligned, enfuse, focus-stack's own expected output) side by side.

Output: a Markdown table on stdout and ``--out`` (default ``results/bench_peers``): ``results.json``,
``pcb_side_by_side.png`` and the fused images.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
#: Hugin's focus-stacking recipe (its documentation): contrast only, hard mask, small window
ENFUSE_FOCUS = ["--exposure-weight=0", "--saturation-weight=0", "--contrast-weight=1", "--hard-mask",
                "--contrast-window-size=5"]


def _run(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> float:
    """Seconds ``cmd`` took; a failure raises with the command's own last words."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))[:300]} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    return seconds


def _fusion_tf(args: list[str]) -> float:
    return _run([sys.executable, "-m", "fusion_tf.cli", *args])


FUSION_TF = [sys.executable, "-m", "fusion_tf.cli"]


def _run_rss(cmd: list[str]) -> tuple[float, float | None]:
    """Wall seconds and peak RSS in GiB of one command; RSS through GNU time (None without it)."""
    if not Path("/usr/bin/time").exists():
        return _run(cmd), None
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as fh:
        seconds = _run(["/usr/bin/time", "-f", "%M", "-o", fh.name, *cmd])
        return seconds, int(fh.read().split()[-1]) / 2**20  # KiB → GiB


def _read(path: Path) -> np.ndarray:
    from fusion_tf.core.imageio import read_image

    return read_image(path)


def _machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{cpu}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"


# ------------------------------------------------------------------------------------------ lytro
def bench_lytro(work: Path, models: list[str]) -> dict:
    from fusion_tf import metrics as M

    pairs_dir = SHARED / "data" / "lytro" / "pairs"
    odd = [f"lytro-{i:02d}" for i in range(1, 20, 2)]
    src = work / "lytro_odd"
    src.mkdir()
    for name in odd:
        for s in "AB":
            shutil.copy(pairs_dir / f"{name}-{s}.jpg", src / f"{name}-{s}.jpg")
    results: dict = {}
    out = work / "enfuse_lytro"
    out.mkdir()
    per_pair = [_run(["enfuse", *ENFUSE_FOCUS, "-o", str(out / f"{n}.tif"), str(src / f"{n}-A.jpg"),
                      str(src / f"{n}-B.jpg")]) for n in odd]
    results["enfuse"] = {"whole_s": sum(per_pair), "per_pair_s": float(np.median(per_pair)), "dir": out, "ext": ".tif"}
    for model in models:
        out = work / f"{model}_lytro"
        whole = _fusion_tf(["fuse", "--model", model, "--batch", str(src), "-o", str(out)])
        with open(out / "batch.csv", newline="") as fh:
            seconds = [float(r["seconds"]) for r in csv.DictReader(fh)]
        results[model] = {"whole_s": whole, "per_pair_s": float(np.median(seconds[1:])), "first_pair_s": seconds[0],
                          "dir": out, "ext": ".png"}
    for name, r in results.items():
        scores = {k: [] for k in ("qabf", "qg_toolbox", "qcb")}
        for n in odd:
            a, b = _read(src / f"{n}-A.jpg"), _read(src / f"{n}-B.jpg")
            f = _read(r["dir"] / f"{n}{r['ext']}")
            for k, v in M.compute(list(scores), a, b, f).items():
                scores[k].append(v)
        r.update({k: float(np.mean(v)) for k, v in scores.items()})
        r.pop("dir"), r.pop("ext")
    return results


# ------------------------------------------------------------------------------------------ speed
def _scores(pairs: list[tuple[Path, Path]], fused: list[Path]) -> float:
    from fusion_tf import metrics as M

    return float(np.mean([M.compute(["qabf"], _read(a), _read(b), _read(f))["qabf"] for (a, b), f in zip(pairs, fused)]))


def bench_speed(work: Path, frames: int = 65) -> dict:
    """Issue 18's table: every row's enfuse figure and ours from this one run."""
    pairs_dir = SHARED / "data" / "lytro" / "pairs"
    names = sorted({p.name[:-len("-A.jpg")] for p in pairs_dir.glob("*-A.jpg")})
    src = work / "lytro20"
    src.mkdir()
    pairs = []
    for name in names:
        for s in "AB":
            shutil.copy(pairs_dir / f"{name}-{s}.jpg", src / f"{name}-{s}.jpg")
        pairs.append((src / f"{name}-A.jpg", src / f"{name}-B.jpg"))
    rows: dict = {}
    out = work / "enfuse20"
    out.mkdir()
    per_pair = [_run(["enfuse", *ENFUSE_FOCUS, "-o", str(out / f"{n}.tif"), str(a), str(b)])
                for n, (a, b) in zip(names, pairs)]
    rows["lytro20 enfuse"] = {"whole_s": sum(per_pair), "per_pair_s": float(np.median(per_pair)),
                              "qabf": _scores(pairs, [out / f"{n}.tif" for n in names])}
    cache = work / "cache"  # a fresh ONNX cache: the conversion is timed once, on its own row
    env = {**os.environ, "FUSION_TF_CACHE": str(cache)}
    for label, args in (("mffgan", ["--model", "mffgan"]),
                        ("mffgan onnxruntime (cached)", ["--model", "mffgan", "--backend", "onnxruntime"]),
                        ("gacn", ["--model", "gacn"])):
        if "onnxruntime" in label:
            t0 = time.perf_counter()
            _run([*FUSION_TF, "fuse", *args, *map(str, pairs[0]), "-o", str(work / "convert.png")], env=env)
            rows["onnx conversion (once per weights)"] = {"whole_s": time.perf_counter() - t0}
        out = work / f"out_{len(rows)}"
        t0 = time.perf_counter()
        _run([*FUSION_TF, "fuse", *args, "--batch", str(src), "-o", str(out)], env=env)
        whole = time.perf_counter() - t0
        with open(out / "batch.csv", newline="") as fh:
            seconds = [float(r["seconds"]) for r in csv.DictReader(fh)]
        rows[f"lytro20 {label}"] = {"whole_s": whole, "per_pair_s": float(np.median(seconds[1:])),
                                    "first_pair_s": seconds[0], "qabf": _scores(pairs, [out / f"{n}.png" for n in names])}
    # start-up: one pair, one process, median of 3 (the ONNX cache is warm from above)
    a, b = pairs[0]
    single = {"enfuse": ["enfuse", *ENFUSE_FOCUS, "-o", str(work / "one.tif"), str(a), str(b)],
              "mffgan onnxruntime (cached)": [*FUSION_TF, "fuse", "--model", "mffgan", "--backend", "onnxruntime",
                                              str(a), str(b), "-o", str(work / "one_onnx.png")],
              "mffgan": [*FUSION_TF, "fuse", "--model", "mffgan", str(a), str(b), "-o", str(work / "one_tf.png")]}
    times: dict = {k: [] for k in single}
    for _ in range(3):  # interleaved, so load changes hit every tool alike
        for k, cmd in single.items():
            t0 = time.perf_counter()
            _run(cmd, env=env)
            times[k].append(time.perf_counter() - t0)
    for k, v in times.items():
        rows[f"one pair, one process: {k}"] = {"whole_s": float(np.median(v))}
    # the microscope stack
    stack = sorted((SHARED / "data" / "stack_v4").glob("V*.jpg"))[:frames]
    seconds, rss = _run_rss(["enfuse", *ENFUSE_FOCUS, "-o", str(work / "stack.tif"), *map(str, stack)])
    rows[f"stack {len(stack)}×1600×1200 enfuse"] = {"whole_s": seconds, "peak_rss_gib": rss}
    seconds, rss = _run_rss([*FUSION_TF, "fuse", "--model", "gacn", *map(str, stack), "-o", str(work / "stack.png")])
    rows[f"stack {len(stack)}×1600×1200 gacn calibration"] = {"whole_s": seconds, "peak_rss_gib": rss}
    return rows


def speed_table(rows: dict) -> str:
    """Markdown: each row with its ratio to the enfuse row of the same workload."""
    def base(label):
        if label.startswith("lytro20") or label.startswith("onnx"):
            return rows["lytro20 enfuse"]
        if label.startswith("one pair"):
            return rows["one pair, one process: enfuse"]
        return next(v for k, v in rows.items() if k.startswith("stack") and k.endswith("enfuse"))

    lines = ["| work | whole command s | × enfuse | steady s/pair | × enfuse | peak RSS GiB | qabf |",
             "|---|---|---|---|---|---|---|"]
    for label, r in rows.items():
        b = base(label)
        ratio = lambda key: f"{r[key] / b[key]:.1f}×" if key in r and key in b else ""  # noqa: E731
        fmt = lambda key, spec: format(r[key], spec) if r.get(key) is not None else ""  # noqa: E731
        lines.append(f"| {label} | {fmt('whole_s', '.2f')} | {ratio('whole_s')} | {fmt('per_pair_s', '.3f')} | "
                     f"{ratio('per_pair_s')} | {fmt('peak_rss_gib', '.2f')} | {fmt('qabf', '.3f')} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ synthetic
def _synthetic_stack(work: Path, frames: int = 5):
    """Frames of one sharp image, each sharp in one vertical band, each moved by a known affine map."""
    import cv2

    # an all-in-focus 640×480 colour image (GACN's published fusion of a benchmark pair), read in place
    sharp = _read(SHARED / "reference" / "gacn" / "published" / "color_dsift_flower.png")
    h, w = sharp.shape[:2]
    blurred = cv2.GaussianBlur(sharp, (0, 0), 3.0)
    band = w // frames
    truth, paths = [], []
    for k in range(frames):
        frame = blurred.copy()
        frame[:, k * band:(k + 1) * band] = sharp[:, k * band:(k + 1) * band]
        c = k - frames // 2
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.4 * c, 1.0 + 0.02 * c)
        m[:, 2] += (6.0 * c, -5.0 * c)
        moved = cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        paths.append(work / f"syn_{k + 1:02d}.png")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(moved, cv2.COLOR_RGB2BGR))
        truth.append(np.vstack([m, [0, 0, 1]]))
    return sharp, truth, paths


def bench_synthetic(work: Path, models: list[str]) -> dict:
    from fusion_tf import api

    sharp, truth, paths = _synthetic_stack(work)
    ref = len(paths) // 2
    results: dict = {}
    # our registration against the known motion (frame k → reference = T_ref · T_k⁻¹)
    reg = api.register([str(p) for p in paths], motion="affine", reference=ref)
    h, w = sharp.shape[:2]
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], float).T
    errors = []
    for k, t in enumerate(truth):
        expected = truth[ref] @ np.linalg.inv(t)  # moved frame k → moved reference frame
        got = reg.transforms[k]
        pe, pg = expected @ corners, got @ corners
        errors.append(float(np.sqrt(np.mean(np.sum((pe[:2] / pe[2] - pg[:2] / pg[2]) ** 2, axis=0)))))
    results["registration_rms_corner_px"] = max(errors)
    import cv2

    h, w = sharp.shape[:2]
    gt = cv2.warpAffine(sharp, truth[ref][:2], (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)

    def score(img: np.ndarray, offset=(0, 0)) -> dict:
        """Error against the ground truth after registering the result onto it (ECC, affine): tools frame
        their output differently (align_image_stack's field of view, our crop), and the framing is not
        what is being compared.  Scored on the central area, away from every border."""
        canvas = gt.copy()
        x0, y0 = offset
        canvas[y0:y0 + img.shape[0], x0:x0 + img.shape[1]] = img[:h - y0, :w - x0]
        reg_to_gt = api.register([gt, canvas], motion="affine", reference=0, crop=False)
        aligned = reg_to_gt.warp(canvas, 1).astype(float)
        m = 64
        diff = (aligned - gt.astype(float))[m:-m, m:-m]
        mse = float(np.mean(diff ** 2))
        return {"mae": float(np.mean(np.abs(diff))), "psnr": float(10 * np.log10(255.0 ** 2 / mse))}

    # enfuse after align_image_stack (Hugin's own registration)
    al = work / "syn_al"
    al.mkdir()
    t_align = _run(["align_image_stack", "-m", "-a", str(al / "al_"), "--use-given-order", *map(str, paths)])
    t_fuse = _run(["enfuse", *ENFUSE_FOCUS, "-o", str(work / "syn_enfuse.tif"), *sorted(map(str, al.glob("al_*.tif")))])
    enf = _read(work / "syn_enfuse.tif")
    # how well align_image_stack registered each frame: its output (in frame 1's coordinates) against the
    # frame moved by the known map, mean absolute difference in grey levels on the central area
    residual = []
    for k, t in enumerate(truth):
        known = cv2.warpAffine(_read(paths[k]), (truth[0] @ np.linalg.inv(t))[:2], (w, h), flags=cv2.INTER_CUBIC)
        got = _read(al / f"al_{k:04d}.tif").astype(float)
        residual.append(round(float(np.abs(got - known)[64:-64, 64:-64].mean()), 2))
    results["align_image_stack+enfuse"] = {"seconds": t_align + t_fuse, **score(enf),
                                           "registration_residual_per_frame": residual}
    for model in models:
        out = work / f"syn_{model}.png"
        seconds = _fusion_tf(["fuse", "--model", model, "--align", "affine", "--align-reference", str(ref + 1),
                              *map(str, paths), "-o", str(out)])
        results[f"{model} --align affine"] = {"seconds": seconds, **score(_read(out), reg.area[:2])}
    return results


# ------------------------------------------------------------------------------------------ pcb
def bench_pcb(work: Path, out_dir: Path, model: str = "gacn") -> dict:
    frames = sorted((SHARED / "data" / "pcb_stack").glob("pcb_*.jpg"))
    al = work / "pcb_al"
    al.mkdir()
    t_align = _run(["align_image_stack", "-m", "-a", str(al / "al_"), "--use-given-order", *map(str, frames)])
    enfused = out_dir / "pcb_enfuse.tif"
    t_enfuse = _run(["enfuse", *ENFUSE_FOCUS, "-o", str(enfused), *sorted(map(str, al.glob("al_*.tif")))])
    # GACN's two N-image rules: calibration (the paper's, the default) and serial, both registered
    outputs = {"calibration": out_dir / f"pcb_{model}_calibration_align.png",
               "serial": out_dir / f"pcb_{model}_serial_align.png",
               "serial, no --align": out_dir / f"pcb_{model}_serial_noalign.png"}
    seconds = {}
    for label, path in outputs.items():
        multi = ["--multi", label.split(",")[0]] if model == "gacn" else []
        align = [] if "no --align" in label else ["--align", "affine"]
        seconds[label] = _fusion_tf(["fuse", "--model", model, *multi, *align, *map(str, frames), "-o", str(path)])
    _figure(out_dir / "pcb_side_by_side.png", [
        *[(f"{model} {label}{'' if 'no --align' in label else ' --align affine'} ({seconds[label]:.0f} s)", path)
          for label, path in outputs.items()],
        (f"align_image_stack + enfuse ({t_align + t_enfuse:.0f} s)", enfused),
        ("focus-stack's expected output", SHARED / "reference" / "peers" / "focus_stack" / "pcb_expected.jpg"),
    ])
    return {"align_image_stack+enfuse_s": t_align + t_enfuse, "align_image_stack_s": t_align,
            **{f"{model} {label} s": v for label, v in seconds.items()}}


def _figure(path: Path, panels: list[tuple[str, Path]]) -> None:
    """Full views plus a 1:1 crop of the same board area from each result (sizes differ: the crop is
    taken around each image's centre)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(panels), figsize=(4 * len(panels), 6.8))
    for col, (title, p) in enumerate(panels):
        img = _read(p)
        h, w = img.shape[:2]
        axes[0, col].imshow(img)
        axes[0, col].set_title(title, fontsize=9)
        cy, cx = h // 2 - 150, w // 2 + 250
        axes[1, col].imshow(img[cy:cy + 300, cx:cx + 400])
        axes[1, col].set_title("1:1 crop", fontsize=9)
        for ax in axes[:, col]:
            ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="lytro,synthetic,pcb")
    parser.add_argument("--models", default="mffgan,gacn")
    parser.add_argument("--out", default=str(ROOT / "results" / "bench_peers"))
    parser.add_argument("--frames", type=int, default=65, help="speed: frames of the microscope stack")
    args = parser.parse_args(argv)
    missing = [tool for tool in ("enfuse", "align_image_stack") if shutil.which(tool) is None]
    if missing:
        print(f"skipped: {', '.join(missing)} not installed (Debian: apt-get install -y enfuse hugin-tools)")
        return 0
    if not SHARED.is_dir():
        print(f"skipped: reference data not found at {SHARED}")
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    models = [m for m in args.models.split(",") if m]
    report = {"machine_before": _machine()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for part in args.only.split(","):
            t0 = time.perf_counter()
            if part == "lytro":
                report["lytro"] = bench_lytro(work, models)
            elif part == "synthetic":
                report["synthetic"] = bench_synthetic(work, models)
            elif part == "speed":
                report["speed"] = bench_speed(work, args.frames)
                print(speed_table(report["speed"]))
            elif part == "pcb":
                report["pcb"] = bench_pcb(work, out, models[-1])
            print(f"[{part}: {time.perf_counter() - t0:.0f} s]", file=sys.stderr)
    report["machine_after"] = _machine()
    (out / "results.json").write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
