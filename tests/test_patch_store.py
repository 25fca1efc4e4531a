"""MFF-GAN patch stores: window order, both layouts, legacy float64 files, malformed stores."""

import h5py
import numpy as np
import pytest

from fusion_tf.data.patches import normalise, open_patch_store, window_origins, write_indexed_layout, write_original_layout
from fusion_tf.data.pipeline import patch_dataset, steps_per_epoch
from fusion_tf.errors import StoreError


def test_window_count_and_row_major_order():
    org = window_origins(520, 520, 60, 10)
    assert len(org) == 2209  # 47 × 47, the paper's 22,090 = 10 × 2,209
    assert tuple(org[0]) == (0, 0) and tuple(org[1]) == (0, 10) and tuple(org[47]) == (10, 0)
    assert tuple(org[-1]) == (460, 460)


def _pairs(rng, sizes=((80, 90), (70, 70))):
    return [tuple(rng.integers(0, 256, s).astype(np.uint8) for _ in range(2)) for s in sizes]


def test_layouts_give_the_same_patch_sequence(tmp_path, rng):
    pairs = _pairs(rng)
    n1 = write_original_layout(tmp_path / "orig", pairs, patch=60, stride=10)
    n2 = write_indexed_layout(tmp_path / "idx.h5", pairs, patch=60, stride=10)
    assert n1 == n2 == 3 * 4 + 2 * 2
    a, b = open_patch_store(tmp_path / "orig"), open_patch_store(tmp_path / "idx.h5")
    batches_a = list(patch_dataset(a, 4))
    batches_b = list(patch_dataset(b, 4))
    assert len(batches_a) == len(batches_b) == steps_per_epoch(a, 4) == 4
    for x, y in zip(batches_a, batches_b):
        for k in ("near", "far"):
            np.testing.assert_array_equal(x[k].numpy(), y[k].numpy())
    # first patch = top-left window of the first pair, normalised as the original
    np.testing.assert_array_equal(batches_a[0]["near"].numpy()[0, ..., 0], normalise(pairs[0][0][:60, :60]))
    # second window is 10 px to the right
    np.testing.assert_array_equal(batches_a[0]["far"].numpy()[1, ..., 0], normalise(pairs[0][1][:60, 10:70]))


def test_float64_store_equals_uint8_store(tmp_path, rng):
    pairs = _pairs(rng, sizes=((70, 70),))
    write_original_layout(tmp_path / "u8", pairs)
    write_original_layout(tmp_path / "f64", pairs, dtype="float64")
    with h5py.File(tmp_path / "f64/Train_near/train.h5") as h5:
        assert h5["data"].dtype == np.float64 and h5["data"].shape == (4, 60, 60, 1)
    x = next(iter(patch_dataset(open_patch_store(tmp_path / "u8"), 4)))
    y = next(iter(patch_dataset(open_patch_store(tmp_path / "f64"), 4)))
    np.testing.assert_array_equal(x["near"].numpy(), y["near"].numpy())


def test_shuffle_is_seeded_per_epoch_and_skip_resumes(tmp_path, rng):
    write_original_layout(tmp_path / "s", _pairs(rng, sizes=((100, 100),)))
    store = open_patch_store(tmp_path / "s")
    e0 = [b["near"].numpy() for b in patch_dataset(store, 2, epoch=0, shuffle=True, seed=5)]
    again = [b["near"].numpy() for b in patch_dataset(store, 2, epoch=0, shuffle=True, seed=5)]
    e1 = [b["near"].numpy() for b in patch_dataset(store, 2, epoch=1, shuffle=True, seed=5)]
    skipped = [b["near"].numpy() for b in patch_dataset(store, 2, epoch=0, shuffle=True, seed=5, skip_batches=3)]
    np.testing.assert_array_equal(np.stack(e0), np.stack(again))
    assert not np.array_equal(np.stack(e0), np.stack(e1))
    np.testing.assert_array_equal(np.stack(e0[3:]), np.stack(skipped))


def test_malformed_stores_are_rejected(tmp_path):
    with pytest.raises(StoreError, match="not found"):
        open_patch_store(tmp_path / "nothing")
    (tmp_path / "bad/Train_near").mkdir(parents=True)
    (tmp_path / "bad/Train_far").mkdir(parents=True)
    with h5py.File(tmp_path / "bad/Train_near/train.h5", "w") as h5:
        h5["images"] = np.zeros((2, 60, 60, 1))
    with h5py.File(tmp_path / "bad/Train_far/train.h5", "w") as h5:
        h5["data"] = np.zeros((2, 60, 60, 1))
    with pytest.raises(StoreError, match="no dataset 'data'"):
        open_patch_store(tmp_path / "bad")
    with h5py.File(tmp_path / "bad/Train_near/train.h5", "w") as h5:
        h5["data"] = np.zeros((2, 60, 50))
    with pytest.raises(StoreError, match="shape"):
        open_patch_store(tmp_path / "bad")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(StoreError, match="cannot read"):
        open_patch_store(tmp_path / "junk.h5")


def test_store_readers_share_one_clear_error_path(tmp_path):
    """GACN and MFIF-GAN stores: missing file, non-HDF5 file, missing datasets → one-line StoreError."""
    import h5py
    import pytest

    from fusion_tf.data import gacn, mfifgan
    from fusion_tf.errors import StoreError

    for reader, kind in ((gacn.open_store, "GACN"), (mfifgan.open_store, "MFIF-GAN")):
        with pytest.raises(StoreError, match=f"{kind} store not found.*fusion-tf prepare"):
            reader(tmp_path / "absent.h5")
        junk = tmp_path / "junk.h5"
        junk.write_bytes(b"not an hdf5 file at all")
        with pytest.raises(StoreError, match="cannot open .* as HDF5"):
            reader(junk)
        empty = tmp_path / f"{kind}.h5"
        with h5py.File(empty, "w") as f:
            f.create_dataset("other", data=[1])
        with pytest.raises(StoreError, match=f"not a {kind} store"):
            reader(empty)


def _prepare_pairs(folder, rng, size=(70, 70)):
    from PIL import Image

    folder.mkdir()
    for i in range(2):
        for side in "AB":
            Image.fromarray(rng.integers(0, 256, size).astype(np.uint8)).save(folder / f"p{i}-{side}.png")
    return folder


@pytest.mark.parametrize("layout,options", [
    ("original", ["--stride", "0"]),
    ("original", ["--patch", "0"]),
    ("original", ["--patch", "-60"]),
    ("original", ["--stride", "-5"]),
    ("indexed", ["--stride", "0"]),
    ("indexed", ["--patch", "0"]),
    ("original", ["--patch", "200"]),  # no window fits
])
def test_prepare_rejects_bad_windows_in_one_line_and_creates_nothing(tmp_path, rng, capsys, layout, options):
    from fusion_tf import cli

    pairs = _prepare_pairs(tmp_path / "pairs", rng)
    out = tmp_path / "new" / ("store.h5" if layout == "indexed" else "store")
    code = cli.main(["prepare", "mffgan", "--pairs", str(pairs), "-o", str(out), "--layout", layout, *options])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:"), err
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("model,options,message", [
    ("gipcgan", ["--images", "absent", "--stride", "0"], "--stride must be a positive integer"),
    ("gipcgan", ["--images", "absent", "--patch", "-8"], "--patch must be a positive integer"),
    ("mfifgan", ["--images", "absent", "--masks", "absent", "--size", "0"], "--size must be a positive integer"),
    ("gacn", ["--images", "absent", "--masks", "absent", "--limit", "-1"], "--limit must be a positive integer"),
])
def test_other_prepares_reject_bad_sizes_before_reading(tmp_path, capsys, model, options, message):
    from fusion_tf import cli

    out = tmp_path / "new" / "store.h5"
    code = cli.main(["prepare", model, "-o", str(out), *options])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "new").exists()


def test_indexed_store_without_patch_attribute_is_a_store_error(tmp_path, rng, capsys):
    from fusion_tf import cli

    path = tmp_path / "idx.h5"
    write_indexed_layout(path, _pairs(rng), patch=60, stride=10)
    with h5py.File(path, "a") as h5:
        del h5.attrs["patch"]
    with pytest.raises(StoreError, match="'patch' attribute"):
        open_patch_store(path)
    run = tmp_path / "run"
    code = cli.main(["train", "mffgan", "--store", str(path), "--run-dir", str(run), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error:") and "'patch' attribute" in err[-1]
    assert not run.exists()


def test_failed_original_layout_write_leaves_no_half_store(tmp_path, rng, monkeypatch):
    """The far store fails after the near one was written: neither file nor new folder remains."""
    import fusion_tf.data.patches as patches

    calls = []
    real = patches.normalise

    def fail_second(block):
        calls.append(1)
        if len(calls) > 2:
            raise OSError("disk full")
        return real(block)

    monkeypatch.setattr(patches, "normalise", fail_second)
    with pytest.raises(OSError, match="disk full"):
        write_original_layout(tmp_path / "new/s", _pairs(rng), dtype="float64")
    assert not (tmp_path / "new").exists()
