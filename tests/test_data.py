"""The training sample stream: seeded, worker-independent, pairs aligned, domains independent."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from noiseda.data.files import list_images
from noiseda.data.samples import StepBatches, TrainSamples, random_crop
from noiseda.data.store import ImageStore, decoded_cache_dir, load_tensor
from noiseda.degrade import DEGRADATIONS
from noiseda.errors import NoisedaError

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
    assert not torch.equal(other["synthetic"], ds[0]["synthetic"])


def test_ranks_get_disjoint_samples():
    r0 = next(iter(StepBatches(0, 3, rank=0, world=2)))
    r1 = next(iter(StepBatches(0, 3, rank=1, world=2)))
    assert not set(r0) & set(r1)


def test_synthetic_pair_is_aligned_and_noise_is_awgn(tmp_path):
    ds = _samples(tmp_path)
    for i in range(20):
        s = ds[i]
        assert s["synthetic"].shape == s["clean"].shape == s["real"].shape == (3, 16, 16)
        resid = s["synthetic"] - s["clean"]
        assert resid.std() < 75 / 255 * 1.5  # noise only: same crop, same transform
        assert abs(resid.mean()) < 0.1


def test_sigma_is_drawn_per_sample_within_range(tmp_path):
    ds = _samples(tmp_path)
    stds = torch.tensor([(ds[i]["synthetic"] - ds[i]["clean"]).std().item() for i in range(60)])
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


def _batches(ds, steps=3, workers=0):
    return list(DataLoader(ds, batch_sampler=StepBatches(0, 4, steps=steps), num_workers=workers))


def test_cache_modes_give_identical_samples(tmp_path):
    """memory, disk and none differ in where decoded pixels live, never in what a sample holds;
    16-bit and gray images keep their exact values too."""
    from noiseda.data.io import Picture, write_image

    files = write_images(tmp_path / "c", 2, size=(30, 34))
    rng = np.random.default_rng(0)
    write_image(tmp_path / "c" / "deep.png", Picture(rng.integers(0, 65536, (30, 34, 3)).astype(np.float32) / 65535, None, 16))
    Image.fromarray(rng.integers(0, 256, (30, 34), dtype=np.uint8)).save(tmp_path / "c" / "gray.png")
    paths = files + [tmp_path / "c" / "deep.png", tmp_path / "c" / "gray.png"]
    runs = {}
    for mode in ("memory", "disk", "none"):
        store = ImageStore(paths, mode)
        store.load_all()
        runs[mode] = _batches(TrainSamples(16, 0, clean=store, real=ImageStore(paths[::-1], mode)))
        for i, p in enumerate(paths):
            assert torch.equal(store[i], load_tensor(p)), (mode, p.name)
    assert {ImageStore(paths, "memory").stored(i).dtype.name for i in range(4)} == {"uint8", "uint16"}
    for mode in ("disk", "none"):
        for a, b in zip(runs["memory"], runs[mode]):
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_disk_cache_is_written_once_and_follows_file_changes(tmp_path):
    import os

    files = write_images(tmp_path / "c", 2, size=(20, 22))
    ImageStore(files, "disk").load_all()
    cached = sorted(decoded_cache_dir().glob("*.npy"))
    assert cached and not list(decoded_cache_dir().glob(".*.tmp"))
    stamp = {f: f.stat().st_mtime_ns for f in cached}
    ImageStore(files, "disk").load_all()  # a second run reads, never rewrites
    assert {f: f.stat().st_mtime_ns for f in cached} == stamp
    # a changed source file gets a new cache entry, with the new pixels
    Image.fromarray(np.zeros((20, 22, 3), np.uint8)).save(files[0])
    os.utime(files[0], ns=(1, 1))
    store = ImageStore(files, "disk")
    assert store[0].abs().max() == 0
    assert isinstance(store.stored(1), np.memmap)


def test_a_damaged_disk_cache_file_is_decoded_again(tmp_path):
    files = write_images(tmp_path / "c", 1, size=(20, 22))
    ImageStore(files, "disk").load_all()
    (cached,) = decoded_cache_dir().glob("*.npy")
    cached.write_bytes(cached.read_bytes()[:100])  # truncated by something other than noiseda
    assert torch.equal(ImageStore(files, "disk")[0], load_tensor(files[0]))
    assert cached.stat().st_size > 100


@pytest.mark.parametrize("room_for", [0, 1.5])
def test_a_disk_cache_without_room_for_all_images_refuses_before_writing(tmp_path, monkeypatch, room_for):
    import shutil
    from collections import namedtuple

    files = write_images(tmp_path / "c", 3, size=(20, 22))
    usage = namedtuple("usage", "total used free")
    free = (1 << 30) + int(room_for * 20 * 22 * 3)  # 1 GiB stays free for everything else
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(free, 0, free))
    with pytest.raises(NoisedaError, match="data.cache=disk: .* need about .* GiB free") as err:
        ImageStore(files, "disk").load_all()
    assert "\n" not in str(err.value)
    assert not list(decoded_cache_dir().glob("*.npy")) and not list(decoded_cache_dir().glob(".*"))


def test_an_unwritable_cache_folder_fails_in_one_line(tmp_path, monkeypatch):
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("NOISEDA_CACHE", str(tmp_path / "not-a-folder"))
    files = write_images(tmp_path / "c", 1)
    for fill in (lambda s: s.load_all(), lambda s: s[0]):  # up front, or on first use
        with pytest.raises(NoisedaError, match="data.cache=disk: cannot write .*not-a-folder.* NOISEDA_CACHE") as err:
            fill(ImageStore(files, "disk"))
        assert "\n" not in str(err.value)


def test_the_cache_size_estimate_reads_every_sample_type_from_headers(tmp_path):
    import tifffile

    from noiseda.data.store import _stored_bytes
    from noiseda.data.io import Picture, write_image

    rng = np.random.default_rng(0)
    h, w = 6, 10
    tifffile.imwrite(tmp_path / "f.tif", rng.random((h, w, 3), dtype=np.float32), photometric="rgb")
    tifffile.imwrite(tmp_path / "u8.tif", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    tifffile.imwrite(tmp_path / "planar16.tif", rng.integers(0, 65536, (3, h, w), dtype=np.uint16),
                     photometric="rgb", planarconfig="separate")
    tifffile.imwrite(tmp_path / "gray-f.tif", rng.random((h, w), dtype=np.float32))
    write_image(tmp_path / "deep.png", Picture(rng.random((h, w, 3)).astype(np.float32), None, 16))
    Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(tmp_path / "gray.png")
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / "rgb.jpg")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    for name in ("f.tif", "u8.tif", "planar16.tif", "gray-f.tif", "deep.png", "gray.png", "rgb.jpg"):
        store = ImageStore([tmp_path / name], "memory")
        assert _stored_bytes(tmp_path / name) == store.stored(0).nbytes, name  # what the cache really holds
    assert _stored_bytes(tmp_path / "broken.png") == 0


def test_crops_of_images_smaller_than_the_patch_are_edge_padded(tmp_path):
    (f,) = write_images(tmp_path / "s", 1, size=(10, 12))
    store = ImageStore([f], "memory")
    (crop,) = random_crop([store.stored(0)], 16, torch.Generator().manual_seed(0))
    full = load_tensor(f)
    assert crop.shape == (3, 16, 16)
    assert torch.equal(crop[:, :10, :12], full)
    assert torch.equal(crop[:, 10:, :12], full[:, -1:, :].expand(3, 6, 12))


@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_filling_the_cache_in_worker_processes_gives_the_same_images(tmp_path, mode):
    files = write_images(tmp_path / "c", 5, size=(20, 22))
    serial, parallel = ImageStore(files, mode), ImageStore(files, mode)
    serial.load_all()
    parallel.load_all(workers=2)
    assert all(np.array_equal(serial.stored(i), parallel.stored(i)) for i in range(5))


def test_a_corrupt_image_fails_the_parallel_fill_in_one_line(tmp_path):
    files = write_images(tmp_path / "c", 3)
    files[1].write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(NoisedaError, match="cannot read image .*img1.png") as err:
        ImageStore(files, "disk").load_all(workers=2)
    assert "\n" not in str(err.value)


def test_a_memory_cache_that_cannot_fit_fails_before_decoding(tmp_path, monkeypatch):
    from noiseda.config import load_config
    from noiseda.data import setup

    write_images(tmp_path / "c", 2, size=(20, 22))
    write_images(tmp_path / "r", 2, size=(20, 22))
    cfg = load_config(None, [f"data.clean={tmp_path / 'c'}", f"data.real={tmp_path / 'r'}", "data.patch_size=16"])
    assert ImageStore(sorted((tmp_path / "c").iterdir())).decoded_bytes() == 2 * 20 * 22 * 3
    monkeypatch.setattr(setup, "available_memory", lambda: 4000)  # the 4 images need 5280 bytes
    load_all = ImageStore.load_all
    monkeypatch.setattr(ImageStore, "load_all", lambda *a, **k: pytest.fail("decoded anyway"))
    with pytest.raises(NoisedaError, match=r"data.cache=memory: .* set data.cache=disk") as err:
        setup.build_samples(cfg, needs_real=True, needs_reference=False)
    assert "\n" not in str(err.value)
    monkeypatch.setattr(ImageStore, "load_all", load_all)
    setup.build_samples(cfg, needs_real=True, needs_reference=False, check_memory=False)  # another rank checked
    setup.build_samples(load_config(None, [f"data.clean={tmp_path / 'c'}", f"data.real={tmp_path / 'r'}",
                                           "data.cache=disk"]), needs_real=True, needs_reference=False)


def test_available_memory_is_the_least_of_the_machine_and_the_cgroup_limits(tmp_path):
    from noiseda.data.setup import available_memory

    def write(rel, text):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)

    kib = 1024
    write("proc/meminfo", "MemTotal: 4000 kB\nMemAvailable: 3000 kB\n")
    assert available_memory(tmp_path) == 3000 * kib
    assert available_memory(tmp_path / "nowhere") is None
    # cgroup v2, the process in a nested group (a Slurm step, say): its own group has no
    # limit, its parent job does, and part of the job's usage is droppable page cache
    write("proc/self/cgroup", "0::/job/step\n")
    write("sys/fs/cgroup/job/step/memory.max", "max\n")
    write("sys/fs/cgroup/job/memory.max", f"{2000 * kib}\n")
    write("sys/fs/cgroup/job/memory.current", f"{1500 * kib}\n")
    write("sys/fs/cgroup/job/memory.stat", f"anon 1\ninactive_file {500 * kib}\n")
    assert available_memory(tmp_path) == 1000 * kib
    # cgroup v1: the limit of the process's memory group, a stat file with both counters
    write("proc/self/cgroup", "5:cpu,cpuacct:/x\n4:memory:/docker/abc\n")
    write("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n")  # the root: none
    write("sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", f"{2500 * kib}\n")
    write("sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes", f"{1000 * kib}\n")
    write("sys/fs/cgroup/memory/docker/abc/memory.stat",
          f"inactive_file {50 * kib}\ntotal_inactive_file {200 * kib}\n")
    assert available_memory(tmp_path) == 1700 * kib


def test_the_cache_command_reports_and_clears_decoded_images(tmp_path, capsys):
    import os
    import time

    from noiseda.cli import main

    files = write_images(tmp_path / "c", 2, size=(20, 22))
    ImageStore(files, "disk").load_all()
    writing, old = decoded_cache_dir() / ".x.npy.fresh.tmp", decoded_cache_dir() / ".y.npy.old.tmp"
    writing.write_bytes(b"partial")  # another process may still be writing it
    old.write_bytes(b"left by a killed process")
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    assert main(["cache"]) == 0
    assert f"{decoded_cache_dir()}: 2 decoded images" in capsys.readouterr().out
    assert main(["cache", "--clear"]) == 0
    assert "removed 3 files" in capsys.readouterr().out
    assert [f.name for f in decoded_cache_dir().iterdir()] == [writing.name]
    store = ImageStore(files, "disk")  # decoded again on demand
    assert torch.equal(store[1], load_tensor(files[1]))


def test_a_disk_cache_refuses_when_the_sets_together_do_not_fit(tmp_path, monkeypatch):
    """Room for data.clean alone is not enough: nothing may be decoded before data.real
    is refused too."""
    import shutil
    from collections import namedtuple

    from noiseda.config import load_config
    from noiseda.data import setup

    write_images(tmp_path / "c", 2, size=(20, 22))
    write_images(tmp_path / "r", 2, size=(20, 22), seed=3)
    cfg = load_config(None, [f"data.clean={tmp_path / 'c'}", f"data.real={tmp_path / 'r'}", "data.cache=disk"])
    free = (1 << 30) + 3 * 20 * 22 * 3  # 3 of the 4 images
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(free, 0, free))
    with pytest.raises(NoisedaError, match="data.cache=disk: the decoded images need about"):
        setup.build_samples(cfg, needs_real=True, needs_reference=False)
    assert not list(decoded_cache_dir().glob("*.npy"))


def test_disk_cache_files_follow_the_umask_so_a_shared_cache_stays_readable(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        ImageStore(write_images(tmp_path / "c", 1), "disk").load_all()
    finally:
        os.umask(old)
    (cached,) = decoded_cache_dir().glob("*.npy")
    assert stat.S_IMODE(cached.stat().st_mode) == 0o644
