"""Image lists, paired folders, and the training sample stream.

Every random draw of a training sample (which file, which crop, which of the
8 flips/rotations, which noise) is a function of (seed, global sample number)
alone. So a run is reproducible with any number of loader workers, and
resuming at step k needs nothing but k.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import shutil
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from noiseda.data.io import is_image, png_bit_depth, read_image
from noiseda.errors import NoisedaError

INPUT_DIR_NAMES = ("noisy", "input", "degraded", "rain", "rainy", "blur", "blurry", "lq")
TARGET_DIR_NAMES = ("clean", "target", "gt", "groundtruth", "sharp", "norain", "hq")


def read_flist(path: Path, what: str) -> list[Path]:
    """A list file: one image path per line (relative paths are relative to the list's folder;
    blank lines and # comments ignored). Every listed file must exist."""
    files = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        f = Path(line).expanduser()
        f = f if f.is_absolute() else path.parent / f
        if not f.is_file():
            raise NoisedaError(f"{what}: {path} line {n}: no such file {f}")
        files.append(f)
    if not files:
        raise NoisedaError(f"{what}: list file {path} names no images")
    return files


def list_images(specs: Sequence[str], what: str, clean_side: bool = False) -> list[Path]:
    """Folders (searched recursively), single files, ``.flist``/``.txt`` list files, glob
    patterns, or ``ADAPTER:PATH`` dataset specs -> image paths (sorted within each spec).
    For paired datasets, ``clean_side`` picks the ground truth instead of the degraded side."""
    from noiseda.data.adapters import resolve

    if not specs:
        raise NoisedaError(f"{what}: no folder given")
    found: list[Path] = []
    for spec in specs:
        p = Path(spec).expanduser()
        adapted = resolve(spec, what)
        if adapted is not None:
            files = [gt if clean_side and gt is not None else x for x, gt in adapted]
        elif any(ch in spec for ch in "*?["):
            matches = [Path(m) for m in sorted(glob.glob(str(p), recursive=True))]
            files = [m for m in matches if m.is_file() and is_image(m)]
            if not files:
                raise NoisedaError(f"{what}: no images match {spec}")
        elif p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and is_image(f) and not f.name.startswith("."))
            if not files:
                raise NoisedaError(f"{what}: no images in folder {p}")
        elif p.is_file() and p.suffix.lower() in (".flist", ".txt"):
            files = read_flist(p, what)
        elif p.is_file():
            if not is_image(p):
                raise NoisedaError(f"{what}: not an image file: {p}")
            files = [p]
        else:
            raise NoisedaError(f"{what}: no such file or folder: {p}")
        found.extend(files)
    return found


def _key(path: Path, root: Optional[Path]) -> str:
    rel = path.relative_to(root) if root is not None and path.is_relative_to(root) else Path(path.name)
    return str(rel.with_suffix(""))


def _root(specs: Sequence[str]) -> Optional[Path]:
    return Path(specs[0]).expanduser() if len(specs) == 1 and Path(specs[0]).expanduser().is_dir() else None


def match_pairs(inputs: Sequence[str], targets: Sequence[str], what: str) -> list[tuple[Path, Path]]:
    """Pair degraded and clean images by file name (without extension, relative to the folder)."""
    ins, outs = list_images(inputs, f"{what} inputs"), list_images(targets, f"{what} targets")
    ri, rt = _root(inputs), _root(targets)
    by_in = {_key(p, ri): p for p in ins}
    by_out = {_key(p, rt): p for p in outs}
    only_in, only_out = sorted(set(by_in) - set(by_out)), sorted(set(by_out) - set(by_in))
    if only_in or only_out:
        side, names = ("have no target", only_in) if only_in else ("have no input", only_out)
        shown = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
        raise NoisedaError(f"{what}: {len(names)} image(s) {side}: {shown}")
    return [(by_in[k], by_out[k]) for k in sorted(by_in)]


def find_pair_dirs(folder: str | Path, what: str = "pairs") -> tuple[Path, Path]:
    """A folder holding a degraded subfolder (noisy/, input/, ...) and a clean one (clean/, target/, ...)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise NoisedaError(f"{what}: no such folder: {root}")
    subdirs = {d.name.lower(): d for d in root.iterdir() if d.is_dir()}
    ins = [subdirs[n] for n in INPUT_DIR_NAMES if n in subdirs]
    outs = [subdirs[n] for n in TARGET_DIR_NAMES if n in subdirs]
    if not ins or not outs:
        raise NoisedaError(
            f"{what}: {root} needs a degraded subfolder ({'/'.join(INPUT_DIR_NAMES[:3])}/...) "
            f"and a clean one ({'/'.join(TARGET_DIR_NAMES[:3])}/...)"
        )
    return ins[0], outs[0]


def load_pairs(folder: str | Path, what: str = "pairs") -> list[tuple[Path, Path]]:
    """Pairs from a folder with degraded + clean subfolders, or from an ``ADAPTER:PATH`` spec."""
    from noiseda.data.adapters import resolve

    adapted = resolve(str(folder), what)
    if adapted is not None:
        if any(gt is None for _, gt in adapted):
            raise NoisedaError(f"{what}: {folder} has no ground truth (a clean-only dataset)")
        return adapted
    i, t = find_pair_dirs(folder, what)
    return match_pairs([str(i)], [str(t)], what)


CACHE_MODES = ("memory", "disk", "none")


def _as_stored(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    """Decoded [0, 1] pixels back to the file's own integers (exact: they came from them), so
    a cache holds 1 byte per value for 8-bit images instead of float32's 4."""
    if bit_depth == 8:
        return np.rint(pixels * 255.0).astype(np.uint8)
    if bit_depth == 16:
        return np.rint(pixels * 65535.0).astype(np.uint16)
    return np.ascontiguousarray(pixels, dtype=np.float32)


_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}


def to_tensor(stored: np.ndarray) -> torch.Tensor:
    """Stored HxWx3 integers (or floats) -> float32 3xHxW in [0, 1]; the same values as
    decoding to floats directly (one correctly rounded division either way)."""
    arr = stored if stored.flags.writeable else np.array(stored)  # memory maps are read-only
    t = torch.from_numpy(arr).permute(2, 0, 1).to(torch.float32, memory_format=torch.contiguous_format, copy=True)
    scale = _SCALE[stored.dtype]
    return t.div_(scale) if scale != 1.0 else t


def load_tensor(path: Path) -> torch.Tensor:
    """One image as float32 3xHxW in [0, 1] (gray is replicated)."""
    return torch.from_numpy(np.ascontiguousarray(read_image(path).rgb)).permute(2, 0, 1).contiguous()


def decoded_cache_dir() -> Path:
    return Path(os.environ.get("NOISEDA_CACHE", Path.home() / ".cache" / "noiseda")) / "decoded"


def decoded_cache_usage() -> tuple[int, int]:
    """(files, bytes) of the decoded-image cache."""
    files, size = 0, 0
    for f in decoded_cache_dir().glob("*.npy"):
        try:
            size += f.stat().st_size
            files += 1
        except FileNotFoundError:  # cleared meanwhile
            pass
    return files, size


def clear_decoded_cache() -> tuple[int, int]:
    """Delete the decoded images; returns (files, bytes) removed. Safe beside a running
    training, which decodes again each image it next reads (slower until all are back);
    temporary files less than a day old may still be being written, so they stay."""
    removed = [0, 0]
    folder = decoded_cache_dir()
    stale = time.time() - 86400
    for f in [*folder.glob("*.npy"), *folder.glob(".*.tmp")]:
        try:
            st = f.stat()
            if f.suffix == ".tmp" and st.st_mtime > stale:
                continue
            f.unlink()
        except FileNotFoundError:  # removed by someone else meanwhile
            continue
        except OSError as exc:
            raise NoisedaError(f"cannot delete {f}: {exc.strerror or exc}") from None
        removed[0] += 1
        removed[1] += st.st_size
    return removed[0], removed[1]


def _decode_stored(path: Path) -> np.ndarray:
    pic = read_image(path)
    return _as_stored(pic.rgb, pic.bit_depth)


def _cache_error(folder: Path, exc: OSError) -> NoisedaError:
    return NoisedaError(
        f"data.cache=disk: cannot write the decoded-image cache in {folder} ({exc.strerror or exc}); "
        "point NOISEDA_CACHE at a writable folder with room, or set data.cache=none"
    )


def _check_free(folder: Path, need: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < need + (1 << 30):  # keep 1 GiB free for everything else
        raise NoisedaError(
            f"data.cache=disk: the decoded images need about {need / 2**30:.1f} GiB and {folder} has "
            f"{free / 2**30:.1f} GiB free; point NOISEDA_CACHE at a larger disk, or set data.cache=none"
        )


def _write_stored(job: tuple[Path, Path]) -> None:
    """Decode one image into a raw ``.npy`` file, atomically: other processes see all or nothing."""
    path, file = job
    arr = _decode_stored(path)
    # A random name, unique across processes and machines sharing the disk; created with the
    # umask's permissions (not mkstemp's 0600), so other users of a shared cache can read it.
    tmp = file.with_name(f".{file.name}.{uuid.uuid4().hex}.tmp")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        _check_free(file.parent, arr.nbytes)  # others may be filling the same disk
        with open(tmp, "xb") as fh:
            np.save(fh, arr)
        os.replace(tmp, file)
    except OSError as exc:
        raise _cache_error(file.parent, exc) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def check_disk_room(stores: Sequence["ImageStore"]) -> None:
    """data.cache=disk: refuse before decoding anything when the images not cached yet (of
    all these sets together, each cache file counted once) would not fit on the cache's disk."""
    missing = {}
    for store in stores:
        for i in range(len(store)):
            f = store._disk_file(i)
            if f not in missing and not f.is_file():
                missing[f] = store.paths[i]
    if not missing:
        return
    folder = decoded_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cache_error(folder, exc) from None
    _check_free(folder, sum(_stored_bytes(p) for p in missing.values()))


def _stored_bytes(path: Path) -> int:
    """What ``_as_stored`` will make of an image, from its header alone: 3 values per pixel
    (gray is replicated), 1 byte each for 8-bit, 2 for 16-bit, 4 for float samples; 0 when
    the header cannot be read (decoding reports the file)."""
    from PIL import Image

    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(str(path)) as tif:
                series = tif.series[0]
                shape, dtype = series.shape, np.dtype(series.dtype)
            if len(shape) == 3 and shape[0] in (1, 3, 4) and shape[2] not in (1, 2, 3, 4):
                shape = shape[1:]  # planar (CxHxW), as _read_tiff reads it
            h, w = shape[:2]
            size = 4 if dtype.kind == "f" else dtype.itemsize
        elif suffix == ".png" and png_bit_depth(path) == 16:
            with Image.open(path) as im:
                (w, h), size = im.size, 2
        else:
            with Image.open(path) as im:
                w, h = im.size
                size = {"F": 4, "I": 2}.get(im.mode, 2 if im.mode.startswith("I;16") else 1)
    except Exception:
        return 0
    return int(h) * int(w) * 3 * size


class ImageStore:
    """Training images, as HxWx3 arrays in the file's own sample type (uint8, uint16, float32).

    ``cache``:
    - ``memory``: decoded once, kept in this process (forked loader workers share it);
    - ``disk``: decoded once into raw ``.npy`` files under ``$NOISEDA_CACHE/decoded`` (keyed by
      path, size and modification time) and memory-mapped, so a crop reads only its own rows
      and every process on a machine shares the OS page cache: for sets too big for memory;
    - ``none``: decoded again for every sample (slow for large images: see ``noiseda prepare``).
    """

    def __init__(self, paths: Sequence[Path], cache: str = "memory"):
        if cache not in CACHE_MODES:
            raise ValueError(f"cache must be one of {CACHE_MODES}, got {cache!r}")
        self.paths = list(paths)
        self.mode = cache
        self._memory: dict[int, np.ndarray] = {}
        self._files: dict[int, Path] = {}

    def __len__(self) -> int:
        return len(self.paths)

    def _disk_file(self, i: int) -> Path:
        f = self._files.get(i)
        if f is None:
            src = self.paths[i].resolve()
            st = src.stat()
            key = hashlib.blake2b(f"{src}:{st.st_size}:{st.st_mtime_ns}".encode(), digest_size=12).hexdigest()
            f = self._files[i] = decoded_cache_dir() / f"{key}.npy"
        return f

    def stored(self, i: int) -> np.ndarray:
        """Image i as stored (a read-only memory map in ``disk`` mode)."""
        if self.mode == "memory":
            if i not in self._memory:
                self._memory[i] = _decode_stored(self.paths[i])
            return self._memory[i]
        if self.mode == "disk":
            f = self._disk_file(i)
            if not f.is_file():
                _write_stored((self.paths[i], f))
            try:
                return np.load(f, mmap_mode="r")
            except (ValueError, OSError, EOFError):  # damaged outside our atomic writes: decode it again
                _write_stored((self.paths[i], f))
                return np.load(f, mmap_mode="r")
        return _decode_stored(self.paths[i])

    def __getitem__(self, i: int) -> torch.Tensor:
        """Image i as float32 3xHxW in [0, 1]."""
        return to_tensor(self.stored(i))

    def decoded_bytes(self) -> int:
        """About what caching all the images takes, from the file headers."""
        return sum(_stored_bytes(p) for p in self.paths)

    def load_all(self, workers: int = 0, desc: Optional[str] = None, check_room: bool = True) -> None:
        """Fill the cache now, decoding in ``workers`` processes (a progress bar with ``desc``),
        so a corrupt file fails before training starts. Nothing to do for ``cache=none``.
        ``check_room=False``: the caller has checked the disk's room (``check_disk_room``)."""
        if self.mode == "memory":
            todo = [i for i in range(len(self)) if i not in self._memory]
            fn, jobs = _decode_stored, [self.paths[i] for i in todo]
        elif self.mode == "disk":
            todo = [i for i in range(len(self)) if not self._disk_file(i).is_file()]
            fn, jobs = _write_stored, [(self.paths[i], self._disk_file(i)) for i in todo]
            if check_room:
                check_disk_room([self])  # refuse now rather than fill the disk and fail halfway
        else:
            return
        from tqdm import tqdm

        bar = tqdm(total=len(self), initial=len(self) - len(todo), desc=desc, disable=desc is None, unit="img")
        with ProcessPoolExecutor(workers) if workers > 1 and len(todo) > 1 else contextlib.nullcontext() as pool:
            for i, arr in zip(todo, pool.map(fn, jobs) if pool else map(fn, jobs)):
                if self.mode == "memory":
                    self._memory[i] = arr
                bar.update(1)
        bar.close()


def derive_seed(*parts) -> int:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def generator(*parts) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(*parts))


def random_crop(images: Sequence[np.ndarray], size: int, g: torch.Generator) -> list[torch.Tensor]:
    """One crop window for all stored images (which share a size), as float32 3 x size x size;
    only the window is converted. Images smaller than ``size`` are padded (edge replicated)."""
    h, w = images[0].shape[:2]
    top = int(torch.randint(0, max(h, size) - size + 1, (), generator=g))
    left = int(torch.randint(0, max(w, size) - size + 1, (), generator=g))
    crops = [to_tensor(im[top : top + size, left : left + size]) for im in images]
    if h < size or w < size:
        pad = (0, max(size - w, 0), 0, max(size - h, 0))
        crops = [torch.nn.functional.pad(c[None], pad, mode="replicate")[0] for c in crops]
    return crops


def dihedral(images: Sequence[torch.Tensor], g: torch.Generator) -> list[torch.Tensor]:
    """One of the 8 flips/rotations, the same for all images."""
    k = int(torch.randint(0, 4, (), generator=g))
    flip = bool(torch.randint(0, 2, (), generator=g))
    out = [torch.rot90(im, k, dims=(1, 2)) for im in images]
    return [im.flip(2) if flip else im for im in out]


class _Stream:
    """Sample i of an endless stream: epoch i // N walks a seeded permutation of the files."""

    def __init__(self, store: ImageStore, seed: int, name: str):
        self.store, self.seed, self.name = store, seed, name
        self._perm: tuple[int, torch.Tensor] = (-1, torch.empty(0))

    def index(self, i: int) -> int:
        n = len(self.store)
        epoch = i // n
        if self._perm[0] != epoch:
            self._perm = (epoch, torch.randperm(n, generator=generator(self.seed, self.name, "perm", epoch)))
        return int(self._perm[1][i % n])


class TrainSamples(Dataset):
    """Map-style dataset over global sample numbers: item i is one training sample.

    Synthetic pairs come from ready pairs, or from clean images + ``degrade`` (without
    ``degrade``, samples hold the clean crop only and the caller degrades the batch).
    Real and reference images get their own crop and transform.
    """

    def __init__(
        self,
        patch_size: int,
        seed: int,
        clean: Optional[ImageStore] = None,
        degrade: Optional[Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = None,
        pairs: Optional[tuple[ImageStore, ImageStore]] = None,
        real: Optional[ImageStore] = None,
        reference: Optional[ImageStore] = None,
    ):
        if (clean is None) == (pairs is None):
            raise ValueError("give either clean images (+ degradation) or pairs")
        self.size, self.seed = patch_size, seed
        self.clean, self.degrade, self.pairs = clean, degrade, pairs
        self.syn = _Stream(clean if clean is not None else pairs[0], seed, "syn")
        self.real = _Stream(real, seed, "real") if real is not None else None
        self.reference = _Stream(reference, seed, "ref") if reference is not None else None

    @property
    def synthetic_size(self) -> int:
        return len(self.syn.store)

    def __len__(self) -> int:  # the stream is endless; samplers index it directly
        return 2**62

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        """Sample i: "clean" and "synthetic" (the synthetic pair; "synthetic" missing when the
        caller degrades), "real" and "reference" where those streams exist (methods' Batch)."""
        g = generator(self.seed, "sample", i)
        j = self.syn.index(i)
        if self.pairs is not None:
            x, y = self.pairs[0].stored(j), self.pairs[1].stored(j)
            if x.shape != y.shape:
                raise NoisedaError(f"pair size mismatch: {self.pairs[0].paths[j]} vs {self.pairs[1].paths[j]}")
            x, y = dihedral(random_crop([x, y], self.size, g), g)
        else:
            (y,) = dihedral(random_crop([self.clean.stored(j)], self.size, g), g)
            x = self.degrade(y, g) if self.degrade is not None else None
        sample = {"clean": y.contiguous()}
        if x is not None:
            sample["synthetic"] = x.contiguous()
        for key, stream in (("real", self.real), ("reference", self.reference)):
            if stream is not None:
                (im,) = dihedral(random_crop([stream.store.stored(stream.index(i))], self.size, g), g)
                sample[key] = im.contiguous()
        return sample


class StepBatches(Sampler):
    """Batches of global sample numbers for steps start+1, start+2, ...; rank r of w takes
    its own slice, so processes never see the same sample."""

    def __init__(self, start_step: int, batch_size: int, rank: int = 0, world: int = 1, steps: Optional[int] = None):
        self.start, self.batch, self.rank, self.world, self.steps = start_step, batch_size, rank, world, steps

    def __iter__(self):
        step = self.start
        while self.steps is None or step < self.steps:
            first = (step * self.world + self.rank) * self.batch
            yield list(range(first, first + self.batch))
            step += 1

    def __len__(self) -> int:
        return (self.steps - self.start) if self.steps is not None else 2**62
