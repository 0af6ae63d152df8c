"""The training sample stream: seeded, worker-independent, pairs aligned, domains independent."""

import torch
from torch.utils.data import DataLoader

from noiseda.data.datasets import ImageStore, StepBatches, TrainSamples, list_images
from noiseda.degrade import DEGRADATIONS

from conftest import write_images


def _samples(tmp_path, seed=0, degrade="awgn"):
    clean = ImageStore(write_images(tmp_path / "c", 3, size=(30, 34)))
    real = ImageStore(write_images(tmp_path / "r", 2, size=(20, 26), seed=5, noise=0.1))
    fn = DEGRADATIONS.get(degrade)
    return TrainSamples(16, seed, clean=clean, degrade=lambda x, g: fn(x, g, sigma_range=(0, 75)),
                        real=real, reference=clean)


def test_same_seed_same_batches_with_any_number_of_workers(tmp_path):
    ds = _samples(tmp_path)
    a = [b for b in DataLoader(ds, batch_sampler=StepBatches(0, 4, steps=3), num_workers=0)]
    b = [b for b in DataLoader(ds, batch_sampler=StepBatches(0, 4, steps=3), num_workers=2)]
    for x, y in zip(a, b):
        assert all(torch.equal(x[k], y[k]) for k in x)
    # resuming at step 2 yields exactly the third batch
    c = next(iter(DataLoader(ds, batch_sampler=StepBatches(2, 4, steps=3))))
    assert all(torch.equal(c[k], a[2][k]) for k in c)
    other = _samples(tmp_path, seed=1)[0]
    assert not torch.equal(other["syn_in"], ds[0]["syn_in"])


def test_ranks_get_disjoint_samples():
    r0 = next(iter(StepBatches(0, 3, rank=0, world=2)))
    r1 = next(iter(StepBatches(0, 3, rank=1, world=2)))
    assert not set(r0) & set(r1)


def test_synthetic_pair_is_aligned_and_noise_is_awgn(tmp_path):
    ds = _samples(tmp_path)
    for i in range(20):
        s = ds[i]
        assert s["syn_in"].shape == s["syn_gt"].shape == s["real"].shape == (3, 16, 16)
        resid = s["syn_in"] - s["syn_gt"]
        assert resid.std() < 75 / 255 * 1.5  # noise only: same crop, same transform
        assert abs(resid.mean()) < 0.1


def test_sigma_is_drawn_per_sample_within_range(tmp_path):
    ds = _samples(tmp_path)
    stds = torch.tensor([(ds[i]["syn_in"] - ds[i]["syn_gt"]).std().item() for i in range(60)])
    assert stds.max() < 80 / 255 and stds.min() < 20 / 255 and stds.max() > 50 / 255


def test_every_image_is_visited_each_epoch(tmp_path):
    ds = _samples(tmp_path)
    # which clean file sample i came from: match its ground truth against the crops of each file
    seen = {ds.syn.index(i) for i in range(3)}
    assert seen == {0, 1, 2}
    assert {ds.real.index(i) for i in range(2)} == {0, 1}


def test_list_images_globs_and_files(tmp_path):
    files = write_images(tmp_path / "a" / "b", 2)
    assert list_images([str(tmp_path / "a")], "x") == files  # recursive
    assert list_images([str(tmp_path / "a" / "**" / "*.png")], "x") == files
    assert list_images([str(files[0])], "x") == [files[0]]


def test_camera_noise_is_deterministic_given_the_generator():
    img = torch.full((3, 32, 32), 0.5)  # flat, so JPEG adds little of its own
    fn = DEGRADATIONS.get("camera-noise")
    a = fn(img, torch.Generator().manual_seed(3))
    b = fn(img, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == img.shape
    noise = a - img
    # demosaicking correlates the noise between neighbouring pixels, unlike AWGN
    corr = torch.corrcoef(torch.stack([noise[0, :, :-1].flatten(), noise[0, :, 1:].flatten()]))[0, 1]
    assert corr > 0.2


def test_flist_files(tmp_path):
    import pytest

    from noiseda.errors import NoisedaError

    files = write_images(tmp_path / "imgs", 2)
    flist = tmp_path / "train.flist"
    flist.write_text(f"# training images\nimgs/{files[1].name}\n\n{files[0]}\n")
    assert list_images([str(flist)], "x") == [files[1], files[0]]
    flist.write_text("imgs/missing.png\n")
    with pytest.raises(NoisedaError, match="line 1: no such file"):
        list_images([str(flist)], "x")
