"""The decoded image store: training images decoded once and kept in memory, or in a disk
cache of raw ``.npy`` files under ``$NOISEDA_CACHE/decoded`` (memory-mapped), or decoded again
each time; plus the cache's usage, clearing and room checks, and stored arrays -> tensors."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from noiseda.data.files import load_pairs
from noiseda.data.io import png_bit_depth, read_image
from noiseda.errors import NoisedaError


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



def load_image_pairs(spec: str | Path, what: str, limit: int = 0) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """Decoded test pairs (name, input, target) from a pairs folder or ``ADAPTER:PATH`` spec,
    the first ``limit`` (0: all); a pair whose sizes differ is one line naming both files.
    Validation, the sweep's test sets, `evaluate` and the demo all read their pairs here."""
    pairs = load_pairs(spec, what)
    out = []
    for x_path, y_path in pairs[:limit] if limit else pairs:
        x, y = load_tensor(x_path), load_tensor(y_path)
        if x.shape != y.shape:
            raise NoisedaError(f"{what}: size mismatch {x_path} {tuple(x.shape)} vs {y_path} {tuple(y.shape)}")
        out.append((x_path.name, x, y))
    return out
