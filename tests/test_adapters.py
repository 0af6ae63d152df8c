"""Dataset adapters on tiny fakes in each dataset's published layout."""

import numpy as np
import pytest

from noiseda.data.files import list_images, load_pairs
from noiseda.errors import NoisedaError

from conftest import write_images


def _rename(paths, names):
    out = []
    for p, n in zip(paths, names):
        q = p.with_name(n)
        p.rename(q)
        out.append(q)
    return out


def test_sidd_medium(tmp_path):
    root = tmp_path / "SIDD_Medium_Srgb"
    for scene in ("0001_001_S6_00100_00060_3200_L", "0002_001_S6_00100_00020_3200_N"):
        d = root / "Data" / scene
        _rename(write_images(d, 2), [f"{scene[:4]}_NOISY_SRGB_010.PNG", f"{scene[:4]}_GT_SRGB_010.PNG"])
    pairs = load_pairs(f"sidd-medium:{root}")
    assert len(pairs) == 2 and all("NOISY" in a.name and "GT" in b.name for a, b in pairs)
    assert all("NOISY" in p.name for p in list_images([f"sidd-medium:{root}"], "data.real"))
    with pytest.raises(NoisedaError, match=r"expected Data/<scene>/\*_NOISY_SRGB_\*.PNG"):
        load_pairs(f"sidd-medium:{tmp_path}")


def test_sidd_validation_mat_blocks(tmp_path, monkeypatch):
    from scipy.io import savemat

    monkeypatch.setenv("NOISEDA_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, size=(2, 3, 8, 8, 3), dtype=np.uint8)
    noisy = np.clip(gt.astype(int) + rng.integers(-10, 10, size=gt.shape), 0, 255).astype(np.uint8)
    savemat(tmp_path / "ValidationNoisyBlocksSrgb.mat", {"ValidationNoisyBlocksSrgb": noisy})
    savemat(tmp_path / "ValidationGtBlocksSrgb.mat", {"ValidationGtBlocksSrgb": gt})
    pairs = load_pairs(f"sidd-val:{tmp_path}")
    assert len(pairs) == 6
    from noiseda.data.io import read_image

    a, b = pairs[4]  # image 1, block 1
    assert np.array_equal(np.round(read_image(a).pixels * 255).astype(np.uint8), noisy[1, 1])
    assert np.array_equal(np.round(read_image(b).pixels * 255).astype(np.uint8), gt[1, 1])
    assert load_pairs(f"sidd-val:{tmp_path}") == pairs  # cached
    with pytest.raises(NoisedaError, match="ValidationNoisyBlocksSrgb.mat"):
        load_pairs(f"sidd-val:{tmp_path / 'cache'}")


def test_rain13k(tmp_path):
    write_images(tmp_path / "train" / "input", 3)
    write_images(tmp_path / "train" / "target", 3)
    assert len(load_pairs(f"rain13k:{tmp_path / 'train'}")) == 3
    with pytest.raises(NoisedaError, match="expected input/ and target/"):
        load_pairs(f"rain13k:{tmp_path}")


def test_spa_training_list_and_test_set(tmp_path):
    rainy = write_images(tmp_path / "real_world" / "000" / "000-0", 2)
    gt = write_images(tmp_path / "real_world_gt" / "000" / "000-0", 2, seed=3)
    lines = [f"{r.relative_to(tmp_path)} {g.relative_to(tmp_path)}" for r, g in zip(rainy, gt)]
    (tmp_path / "real_world.txt").write_text("\n".join(lines) + "\n")
    assert load_pairs(f"spa:{tmp_path / 'real_world.txt'}") == list(zip(rainy, gt))
    test = tmp_path / "test" / "real_test_1000"
    _rename(write_images(test / "rain", 2), ["001.png", "002.png"])
    _rename(write_images(test / "gt", 2), ["001gt.png", "002gt.png"])
    pairs = load_pairs(f"spa:{tmp_path / 'test'}")
    assert [(a.name, b.name) for a, b in pairs] == [("001.png", "001gt.png"), ("002.png", "002gt.png")]
    # The published test list writes its paths with a leading slash, relative to the list's folder.
    (tmp_path / "test" / "real_test_1000.txt").write_text(
        "/real_test_1000/rain/001.png /real_test_1000/gt/001gt.png\n")
    listed = load_pairs(f"spa:{tmp_path / 'test' / 'real_test_1000.txt'}")
    assert listed == [(test / "rain" / "001.png", test / "gt" / "001gt.png")]


def test_gopro(tmp_path):
    for seq in ("GOPR0372_07_00", "GOPR0374_11_00"):
        write_images(tmp_path / "train" / seq / "blur", 2)
        write_images(tmp_path / "train" / seq / "sharp", 2)
    pairs = load_pairs(f"gopro:{tmp_path / 'train'}")
    assert len(pairs) == 4 and all(a.parent.name == "blur" and b.parent.name == "sharp" for a, b in pairs)
    assert all(p.parent.name == "sharp" for p in list_images([f"gopro:{tmp_path / 'train'}"], "x", clean_side=True))
    (tmp_path / "train" / "GOPR0374_11_00" / "sharp" / "img1.png").unlink()
    with pytest.raises(NoisedaError, match="gopro"):
        load_pairs(f"gopro:{tmp_path / 'train'}")


def test_realblur_list_is_gt_first(tmp_path):
    gt = write_images(tmp_path / "RealBlur-J_ECC_IMCORR_centroid_itensity_ref" / "scene001" / "gt", 1)
    blur = write_images(tmp_path / "RealBlur-J_ECC_IMCORR_centroid_itensity_ref" / "scene001" / "blur", 1, noise=0.1)
    (tmp_path / "RealBlur_J_train_list.txt").write_text(
        f"{gt[0].relative_to(tmp_path)} {blur[0].relative_to(tmp_path)}\n")
    assert load_pairs(f"realblur:{tmp_path}") == [(blur[0], gt[0])]
    (tmp_path / "RealBlur_J_test_list.txt").write_text("")
    with pytest.raises(NoisedaError, match="one RealBlur_"):
        load_pairs(f"realblur:{tmp_path}")
    assert load_pairs(f"realblur:{tmp_path / 'RealBlur_J_train_list.txt'}") == [(blur[0], gt[0])]


def test_dfwb_and_coco_are_clean_only(tmp_path):
    write_images(tmp_path / "DIV2K_train_HR", 2)
    write_images(tmp_path / "BSD400", 1)
    write_images(tmp_path / "other", 5)
    assert len(list_images([f"dfwb:{tmp_path}"], "data.clean", clean_side=True)) == 3
    assert len(list_images([f"coco:{tmp_path / 'other'}"], "data.reference")) == 5
    with pytest.raises(NoisedaError, match="no ground truth"):
        load_pairs(f"dfwb:{tmp_path}")
    with pytest.raises(NoisedaError, match="expected DIV2K"):
        list_images([f"dfwb:{tmp_path / 'other'}"], "data.clean")


def test_unknown_adapter_and_missing_root(tmp_path):
    with pytest.raises(NoisedaError, match="did you mean 'gopro'"):
        list_images([f"gorpo:{tmp_path}/x"], "data.real")
    with pytest.raises(NoisedaError, match="no such file or folder"):
        list_images([f"gopro:{tmp_path}/x"], "data.real")


def test_training_from_adapters(tmp_path):
    from noiseda.config import load_config
    from noiseda.training.loop import train

    from conftest import TINY

    for seq in ("a", "b"):
        write_images(tmp_path / "gopro" / seq / "blur", 1, noise=0.1)
        write_images(tmp_path / "gopro" / seq / "sharp", 1)
    d = tmp_path / "sidd" / "Data" / "0001_x"
    _rename(write_images(d, 2), ["0001_NOISY_SRGB_010.PNG", "0001_GT_SRGB_010.PNG"])
    cfg = load_config("deblur", TINY + [f"data.pairs=gopro:{tmp_path / 'gopro'}",
                                        f"data.real=sidd-medium:{tmp_path / 'sidd'}", "data.val_pairs=null",
                                        "data.cache=memory", "data.workers=0"])
    assert train(cfg, tmp_path / "run", progress=False)["steps"] == 6
