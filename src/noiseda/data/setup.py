"""From a config to checked training data: the sample stream and the validation pairs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from noiseda.data.files import list_images, load_pairs, match_pairs
from noiseda.data.samples import TrainSamples
from noiseda.data.store import ImageStore, check_disk_room, load_image_pairs
from noiseda.degrade import compose
from noiseda.errors import NoisedaError

if TYPE_CHECKING:
    from noiseda.config import Config


def device_degradation(cfg: Config):
    """The synthetic degradation to apply to whole batches on the training device, or None
    when the data workers apply it per image (``data.degrade_on``)."""
    d = cfg.data
    return compose(d.degradation, sigma_range=tuple(d.sigma_range)) if d.degrade_on == "device" else None


def build_samples(
    cfg: Config, needs_real: bool, needs_reference: bool, progress: bool = False, check_memory: bool = True
) -> TrainSamples:
    """Check and index all training data, filling the decoded-image cache (in ``data.workers``
    processes); raises NoisedaError before anything is written. ``check_memory``: whether this
    process checks that ``data.cache=memory`` fits for all processes on the machine (the first
    of them, before any has decoded)."""
    d = cfg.data
    stores: dict = {}
    if sum(map(bool, (d.clean, d.pairs, d.pairs_input or d.pairs_target))) > 1:
        raise NoisedaError("data: give one of data.clean, data.pairs, or data.pairs_input + data.pairs_target")
    if d.pairs or d.pairs_input or d.pairs_target:
        pairs = load_pairs(d.pairs, "data.pairs") if d.pairs else match_pairs(d.pairs_input, d.pairs_target, "data.pairs")
        stores["pairs"] = (ImageStore([p for p, _ in pairs], d.cache), ImageStore([t for _, t in pairs], d.cache))
    elif d.clean:
        stores["clean"] = ImageStore(list_images(d.clean, "data.clean", clean_side=True), d.cache)
        if d.degrade_on == "loader":  # else the training loop degrades whole batches (device_degradation)
            stores["degrade"] = compose(d.degradation, sigma_range=tuple(d.sigma_range))
    else:
        raise NoisedaError("data: no synthetic training data (set data.clean, data.pairs, or data.pairs_input + data.pairs_target)")
    if needs_real:
        if not d.real:
            raise NoisedaError(f"data.real: method {cfg.method.name!r} needs unlabeled real images")
        stores["real"] = ImageStore(list_images(d.real, "data.real"), d.cache)
    if needs_reference:
        # Default: the synthetic ground truth, drawn by its own stream, hence unpaired.
        if d.reference:
            stores["reference"] = ImageStore(list_images(d.reference, "data.reference", clean_side=True), d.cache)
        else:
            stores["reference"] = stores["clean"] if "clean" in stores else stores["pairs"][1]
    samples = TrainSamples(d.patch_size, cfg.train.seed, **stores)
    if d.cache != "none":  # decode everything now: fills the cache, and a corrupt file fails before step 1
        named = {"data.clean": stores.get("clean"), "data.real": stores.get("real"),
                 "data.reference": stores.get("reference")}
        if "pairs" in stores:
            named |= {"data.pairs (inputs)": stores["pairs"][0], "data.pairs (targets)": stores["pairs"][1]}
        unique: dict[int, tuple[str, ImageStore]] = {}
        for name, store in named.items():
            if store is not None:
                unique.setdefault(id(store), (name, store))  # the default reference set is data.clean itself
        if d.cache == "memory" and check_memory:
            _check_memory([store for _, store in unique.values()])
        if d.cache == "disk":  # all sets together, before the first is decoded
            check_disk_room([store for _, store in unique.values()])
        for name, store in unique.values():
            store.load_all(d.workers, f"decoding {name} ({d.cache} cache)" if progress else None, check_room=False)
        if "pairs" in stores:
            inputs, targets = stores["pairs"]
            for i in range(len(inputs)):
                a, b = inputs.stored(i).shape, targets.stored(i).shape
                if a != b:
                    raise NoisedaError(f"data.pairs: size mismatch {inputs.paths[i]} {a[:2]} vs {targets.paths[i]} {b[:2]}")
    return samples


def _memory_cgroups(root: Path) -> list[tuple[Path, int]]:
    """The memory cgroup folders whose limits apply to this process, with their cgroup
    version: its own (from /proc/self/cgroup: Slurm jobs, systemd scopes, containers) and
    every parent up to the mount point."""
    mount = root / "sys/fs/cgroup"
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        lines = []
    found = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[1] == "":  # the v2 unified hierarchy: "0::/path"
            base, version = mount, 2
        elif "memory" in parts[1].split(","):  # v1: "N:memory:/path"
            base, version = mount / "memory", 1
        else:
            continue
        own = Path(parts[2].lstrip("/"))
        found += [(base / d, version) for d in (own, *own.parents)]
    return found or [(mount, 2), (mount / "memory", 1)]


def available_memory(root: Path = Path("/")) -> int | None:
    """Bytes of memory available to new allocations, or None if unknown: Linux's MemAvailable,
    or less where a cgroup limit (v2 or v1) on this process leaves less."""
    found = []
    try:
        for line in (root / "proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError):
        pass
    files = {2: ("memory.max", "memory.current", "memory.stat", "inactive_file"),
             1: ("memory.limit_in_bytes", "memory.usage_in_bytes", "memory.stat", "total_inactive_file")}
    for folder, version in _memory_cgroups(root):
        limit, usage, stat, reclaimable = files[version]
        try:
            text = (folder / limit).read_text().strip()
            if text == "max":
                continue
            used = int((folder / usage).read_text())
            for line in (folder / stat).read_text().splitlines():  # page cache the kernel can drop
                if line.startswith(reclaimable + " "):
                    used -= int(line.split()[1])
            found.append(max(int(text) - used, 0))
        except (OSError, ValueError):
            continue
    return min(found) if found else None


def _check_memory(stores: list[ImageStore]) -> None:
    """data.cache=memory: fail before decoding when the images cannot fit (every process on this
    machine holds its own copy), rather than be killed for memory halfway."""
    available = available_memory()
    if available is None:
        return
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    need = processes * sum(s.decoded_bytes() for s in stores)
    if need > 0.8 * available:
        raise NoisedaError(
            f"data.cache=memory: the decoded training images need about {need / 2**30:.1f} GiB "
            f"({processes} process(es) on this machine) and {available / 2**30:.1f} GiB is available; "
            "set data.cache=disk"
        )


def load_validation(cfg: Config) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    if not cfg.data.val_pairs:
        return []
    return load_image_pairs(cfg.data.val_pairs, "data.val_pairs", cfg.data.val_max_images)
