"""16-bit sources and metadata (issue 14): 16-bit grey/RGB PNG and TIFF in → 16-bit out for every model,
``output_depth`` conversions, EXIF orientation on reading, EXIF + ICC carried from the first source into
the output (Python API and command line).  Tiny 48×64 crops of the bundled sample pair keep it fast.

Tolerance of "16-bit ≈ 257 × 8-bit": for sources v·257 every model sees exactly the floats it sees for
v (x/257, x/65535 and x/255 are correctly rounded divisions of the same real number), so the 16-bit and
8-bit results differ only by their last rounding: round(257·y) against 257·round(y), at most
257/2 → 128 levels of 65535 (MFIF-GAN selects source pixels: exactly 257·v).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

import fusion_tf
from fusion_tf.api import write_result
from fusion_tf.core import imageio
from fusion_tf.errors import FusionError

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "datasets" / "samples"
MODELS = ("mffgan", "gipcgan", "gacn", "mfifgan")
ORIENTATION, MAKE, DATE_TIME_ORIGINAL = 0x0112, 0x010F, 0x9003


def _crop(letter: str) -> np.ndarray:
    return np.asarray(Image.open(SAMPLES / f"lytro-01-{letter}.jpg").convert("RGB"))[200:248, 150:214].copy()


def _pair(kind: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = _crop("A"), _crop("B")
    return (a, b) if kind == "rgb" else (a[..., 1].copy(), b[..., 1].copy())


def _lift(x: np.ndarray, seed: int) -> np.ndarray:
    """8-bit content as 16-bit with low-order bits set: x·257 + noise in [−128, 128] (rounds back to x)."""
    noise = np.random.default_rng(seed).integers(-128, 129, x.shape)
    return np.clip(x.astype(np.int32) * 257 + noise, 0, 65535).astype(np.uint16)


def _write16(path: Path, image: np.ndarray) -> Path:
    """A 16-bit source file written by OpenCV (an encoder independent of fusion_tf's writer)."""
    assert cv2.imwrite(str(path), image[..., ::-1] if image.ndim == 3 else image)
    return path


def _icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _exif(orientation: int = 1) -> Image.Exif:
    """EXIF with an orientation, a main-IFD tag and an EXIF-IFD tag (give Pillow its ``tobytes()``: its TIFF
    writer drops the EXIF sub-IFD of an ``Exif`` object)."""
    exif = Image.Exif()
    exif[MAKE] = "fusion_tf test"
    exif[ORIENTATION] = orientation
    exif.get_ifd(0x8769)[DATE_TIME_ORIGINAL] = "2024:05:06 07:08:09"
    return exif


def _parsed(exif: bytes | None) -> Image.Exif:
    out = Image.Exif()
    if exif:
        out.load(exif)
    return out


@pytest.fixture(scope="module")
def fusers() -> dict:
    return {m: fusion_tf.load_fuser(m) for m in MODELS}


# -- fusion ------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("kind", ["grey", "rgb"])
@pytest.mark.parametrize("model", MODELS)
def test_sixteen_bit_files_fuse_to_sixteen_bit_files(fusers, tmp_path, model, kind, suffix):
    a, b = (_lift(x, seed) for seed, x in enumerate(_pair(kind)))
    pa, pb = _write16(tmp_path / f"a{suffix}", a), _write16(tmp_path / f"b{suffix}", b)
    np.testing.assert_array_equal(imageio.read_image(pa), a)
    result = fusion_tf.fuse([pa, pb], fuser=fusers[model])
    assert result.fused.dtype == np.uint16 and result.fused.shape == a.shape
    out = write_result(result, tmp_path / f"fused{suffix}")
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back[..., ::-1] if back.ndim == 3 else back, result.fused)


@pytest.mark.parametrize("kind", ["grey", "rgb"])
@pytest.mark.parametrize("model", MODELS)
def test_sixteen_bit_result_is_257_times_the_eight_bit_one(fusers, model, kind):
    a, b = _pair(kind)
    eight = fusion_tf.fuse([a, b], fuser=fusers[model]).fused.astype(np.int64)
    sixteen = fusion_tf.fuse([a.astype(np.uint16) * 257, b.astype(np.uint16) * 257], fuser=fusers[model]).fused
    assert eight.dtype != sixteen.dtype == np.uint16
    diff = np.abs(sixteen.astype(np.int64) - 257 * eight)
    assert diff.max() <= (0 if model == "mfifgan" else 128)  # the module docstring derives the bound


@pytest.mark.parametrize("kind", ["grey", "rgb"])
@pytest.mark.parametrize("model", MODELS)
def test_sixteen_bit_precision_is_used(fusers, model, kind):
    """Low-order bits of the sources reach the output: not a fusion of 8-bit values scaled by 257."""
    a8, b8 = _pair(kind)
    a, b = _lift(a8, 1), _lift(b8, 2)
    fused = fusion_tf.fuse([a, b], fuser=fusers[model]).fused
    eight = fusion_tf.fuse([a8, b8], fuser=fusers[model]).fused
    assert (fused % 257 != 0).mean() > 0.9  # measured 0.987–0.997
    assert np.abs(fused / 257.0 - eight).mean() < 1.0  # the same picture (sources differ by ≤ 0.5 level)
    lo, hi = np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
    if model == "mfifgan":  # the 16-bit source pixels themselves
        assert ((fused == a) | (fused == b)).all()
    elif model == "gacn":  # a convex blend of the 16-bit pixels, rounded once
        assert ((fused >= lo - 1) & (fused <= hi + 1)).all()


@pytest.mark.parametrize("model", ["mffgan", "gacn"])  # the models whose colour steps run in row bands
def test_tiled_sixteen_bit_equals_whole_image(fusers, model):
    a, b = (_lift(x, seed) for seed, x in enumerate(_pair("rgb")))
    whole = fusion_tf.fuse([a, b], fuser=fusers[model]).fused
    tiled = fusion_tf.fuse([a, b], fuser=fusion_tf.load_fuser(model, tile=16)).fused
    if model != "gacn":
        np.testing.assert_array_equal(tiled, whole)
        return
    # GACN's tiled map is within 1e-3 of the whole one (docs/large_images.md: its SE means differ by
    # ~1e-6 before two sigmoid(1000·x)), i.e. ≤ 66 of 65535 levels; measured: 0.33 % of values off by 1
    diff = np.abs(tiled.astype(np.int64) - whole)
    assert diff.max() <= 66 and (diff > 0).mean() <= 0.02


def test_gacn_calibration_selects_sixteen_bit_source_pixels(fusers):
    a, b = (_lift(x, seed) for seed, x in enumerate(_pair("rgb")))
    c = _lift(_crop("A"), 7)
    fused = fusion_tf.fuse([a, b, c], fuser=fusers["gacn"]).fused
    assert fused.dtype == np.uint16
    assert (np.all(fused == a, -1) | np.all(fused == b, -1) | np.all(fused == c, -1)).all()


def test_output_depth_and_refusals(fusers, tmp_path):
    a8, b8 = _pair("rgb")
    a, b = _lift(a8, 1), _lift(b8, 2)
    gacn = fusers["gacn"]
    sixteen = fusion_tf.fuse([a, b], fuser=gacn).fused
    eight = fusion_tf.fuse([a, b], fuser=gacn, output_depth=8).fused
    assert eight.dtype == np.uint8
    np.testing.assert_array_equal(eight, np.round(sixteen / 257.0).astype(np.uint8))
    up = fusion_tf.fuse([a8, b8], fuser=gacn, output_depth=16).fused
    np.testing.assert_array_equal(up, fusion_tf.fuse([a8, b8], fuser=gacn).fused.astype(np.uint16) * 257)
    assert imageio.to_depth(np.array([0, 128, 129, 65535], np.uint16), 8).tolist() == [0, 0, 1, 255]
    # JPEG holds 8 bits: a 16-bit result is refused there, not silently reduced
    with pytest.raises(FusionError, match="JPEG holds 8 bits"):
        imageio.write_image(tmp_path / "f.jpg", sixteen)
    assert not list(tmp_path.iterdir())  # nothing half-written
    assert imageio.read_image(imageio.write_image(tmp_path / "f.jpg", sixteen, depth=8)).dtype == np.uint8
    with pytest.raises(FusionError, match="one bit depth"):
        fusion_tf.fuse([a8, b], fuser=gacn)
    for model in ("mffgan", "mfifgan"):  # faithful = the original's 8-bit bytes; no 16-bit meaning
        with pytest.raises(FusionError, match="faithful"):
            fusion_tf.fuse([a, b], fuser=fusion_tf.load_fuser(model, output_mode="faithful"))


# -- reading -----------------------------------------------------------------------------------
def test_reading_sixteen_bit_files(tmp_path):
    rgb = _lift(_crop("A"), 3)
    grey = rgb[..., 0].copy()
    Image.fromarray(grey).save(tmp_path / "g.png")  # Pillow I;16
    Image.fromarray(grey).save(tmp_path / "g.tif")
    for name in ("g.png", "g.tif"):
        np.testing.assert_array_equal(imageio.read_image(tmp_path / name), grey)
        np.testing.assert_array_equal(imageio.read_image(tmp_path / name, "rgb"), np.dstack([grey] * 3))
    for suffix in (".png", ".tif"):
        path = _write16(tmp_path / f"rgb{suffix}", rgb)
        got = imageio.read_image(path)
        assert got.dtype == np.uint16
        np.testing.assert_array_equal(got, rgb)
        w = rgb.astype(np.uint64)  # Pillow's "L" rule, on 16 bits
        luma = (w[..., 0] * 19595 + w[..., 1] * 38470 + w[..., 2] * 7471 + 0x8000) >> 16
        np.testing.assert_array_equal(imageio.read_image(path, "grey"), luma)
        np.testing.assert_array_equal(imageio.read_image(path, depth=8), np.round(rgb / 257.0).astype(np.uint8))
    Image.fromarray(grey.astype(np.int32) * 2).save(tmp_path / "wide.tif")  # 32-bit integers beyond 16 bits
    with pytest.raises(FusionError, match="outside 0…65535"):
        imageio.read_image(tmp_path / "wide.tif")
    Image.fromarray(grey.astype(np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(FusionError, match="not supported"):
        imageio.read_image(tmp_path / "float.tif")


def test_exif_orientation_is_applied_when_reading(tmp_path):
    rgb = _crop("A")
    Image.fromarray(rgb).save(tmp_path / "phone.jpg", exif=_exif(6).tobytes(), quality=95)  # 6: rotate 90° clockwise
    decoded = np.asarray(Image.open(tmp_path / "phone.jpg").convert("RGB"))
    got = imageio.read_image(tmp_path / "phone.jpg")
    assert got.shape == (rgb.shape[1], rgb.shape[0], 3)
    np.testing.assert_array_equal(got, np.rot90(decoded, -1))
    # every orientation as Pillow's exif_transpose does it: the Pillow reader (8-bit), the array rule, and
    # the OpenCV reader of 16-bit colour (48-bit PNG with an eXIf chunk)
    sixteen = _lift(rgb, 4)
    for orientation in range(1, 9):
        Image.fromarray(rgb).save(tmp_path / "o.png", exif=_exif(orientation).tobytes())
        expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png")))
        np.testing.assert_array_equal(imageio.read_image(tmp_path / "o.png"), expected)
        np.testing.assert_array_equal(imageio._orient(rgb, orientation), expected)
        exif = np.frombuffer(_exif(orientation).tobytes()[6:], np.uint8)  # eXIf: no "Exif\0\0" header
        assert cv2.imwriteWithMetadata(str(tmp_path / "o16.png"), sixteen[..., ::-1].copy(),
                                       [cv2.IMAGE_METADATA_EXIF], [exif])
        np.testing.assert_array_equal(imageio.read_image(tmp_path / "o16.png"), imageio._orient(sixteen, orientation))
        assert _parsed(imageio.read_metadata(tmp_path / "o16.png").exif)[ORIENTATION] == 1


# -- metadata ----------------------------------------------------------------------------------
def _check_metadata(path: Path, icc: bytes) -> Image.Exif:
    meta = imageio.read_metadata(path)
    assert meta.icc_profile == icc
    exif = _parsed(meta.exif)
    assert exif[MAKE] == "fusion_tf test" and exif[ORIENTATION] == 1
    assert exif.get_ifd(0x8769)[DATE_TIME_ORIGINAL] == "2024:05:06 07:08:09"
    return exif


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_exif_and_icc_round_trip_through_the_api(fusers, tmp_path, suffix):
    a, b = _pair("rgb")
    icc = _icc()
    pa, pb = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    # the first source is a phone photo stored sideways (orientation 6); the second is upright already
    Image.fromarray(np.rot90(a, 1).copy()).save(pa, exif=_exif(6).tobytes(), icc_profile=icc)
    Image.fromarray(b).save(pb)
    result = fusion_tf.fuse([pa, pb], fuser=fusers["gacn"])
    assert result.fused.shape == a.shape  # upright, so it matches the second source
    out = write_result(result, tmp_path / f"fused{suffix}")
    _check_metadata(out, icc)
    assert imageio.read_image(out).shape == a.shape  # orientation 1: no second rotation


@pytest.mark.parametrize("kind", ["grey", "rgb"])
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_outputs_carry_exif_and_icc(tmp_path, suffix, kind):
    image = _lift(_pair(kind)[0], 5)
    icc = _icc()
    meta = imageio.ImageMetadata(exif=_exif(6).tobytes(), icc_profile=icc)
    out = imageio.write_image(tmp_path / f"m{suffix}", image, metadata=meta)
    _check_metadata(out, icc)
    np.testing.assert_array_equal(imageio.read_image(out), image)
    # a 16-bit TIFF source's own layout tags (size, strips, …) are not carried as EXIF
    assert not set(_parsed(imageio.read_metadata(out).exif)) & {256, 257, 258, 273, 279}


def _cli_has_output_depth() -> bool:
    import fusion_tf.cli

    return "--output-depth" in Path(fusion_tf.cli.__file__).read_text()


@pytest.mark.skipif(not _cli_has_output_depth(), reason="needs fuse --output-depth wired into fusion_tf/cli.py")
def test_command_line_keeps_depth_and_metadata(tmp_path, capsys):
    from fusion_tf.cli import main

    a, b = (_lift(x, seed) for seed, x in enumerate(_pair("rgb")))
    icc = _icc()
    pa, pb = tmp_path / "a.png", tmp_path / "b.png"
    imageio.write_image(pa, a, metadata=imageio.ImageMetadata(_exif().tobytes(), icc))
    imageio.write_image(pb, b)
    assert main(["fuse", "--model", "gacn", str(pa), str(pb), "-o", str(tmp_path / "f.png")]) == 0
    fused = imageio.read_image(tmp_path / "f.png")
    assert fused.dtype == np.uint16
    np.testing.assert_array_equal(fused, fusion_tf.fuse([pa, pb], model="gacn").fused)
    _check_metadata(tmp_path / "f.png", icc)
    assert main(["fuse", "--model", "gacn", str(pa), str(pb), "-o", str(tmp_path / "f8.png"),
                 "--output-depth", "8"]) == 0
    np.testing.assert_array_equal(imageio.read_image(tmp_path / "f8.png"), imageio.to_depth(fused, 8))
    _check_metadata(tmp_path / "f8.png", icc)
    assert main(["fuse", "--model", "gacn", str(pa), str(pb), "-o", str(tmp_path / "f.jpg")]) == 2
    assert "--output-depth 8" in capsys.readouterr().err
    assert main(["fuse", "--model", "gacn", str(pa), str(pb), "-o", str(tmp_path / "f.jpg"),
                 "--output-depth", "8"]) == 0
    _check_metadata(tmp_path / "f.jpg", icc)
