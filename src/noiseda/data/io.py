"""The one place images are decoded and encoded.

Reading gives float32 HxWxC in [0, 1] (C = 1 gray or 3 colour) plus what is
needed to write the result back the same way: bit depth and an alpha channel
that restoration passes through untouched. 16-bit PNG and TIFF are read and
written without loss (Pillow would reduce 16-bit colour PNG to 8 bits, so
those go through pypng; TIFF goes through tifffile).
"""

from __future__ import annotations

import dataclasses
import io
import os
import struct
import zlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, ImageOps

from noiseda.errors import NoisedaError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
DEFAULT_MAX_PIXELS = 400_000_000  # $NOISEDA_MAX_PIXELS overrides it
Image.MAX_IMAGE_PIXELS = None  # we apply our own limit, with our own message


@dataclass
class Picture:
    pixels: np.ndarray  # float32 HxWxC in [0, 1], C in {1, 3}
    alpha: Optional[np.ndarray] = None  # float32 HxW in [0, 1]
    bit_depth: int = 8
    # A photo's metadata, written back with the restored pixels: EXIF (its orientation reset to
    # 1 where the pixels were turned upright on reading) and the ICC colour profile.
    exif: Optional[bytes] = None
    icc: Optional[bytes] = None
    frames: int = 1  # an animated image's frame count (the pixels hold the first frame)

    @property
    def rgb(self) -> np.ndarray:
        """Three channels, whatever the source had (gray is replicated)."""
        return np.repeat(self.pixels, 3, axis=2) if self.pixels.shape[2] == 1 else self.pixels


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def max_pixels() -> int:
    """The largest image (width x height) noiseda decodes: a guard against decompression bombs."""
    value = os.environ.get("NOISEDA_MAX_PIXELS", "").strip()
    if not value:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit < 1:
        raise NoisedaError(f"NOISEDA_MAX_PIXELS: expected a positive whole number of pixels, got {value!r}")
    return limit


def _check_size(path: Path, h: int, w: int) -> None:
    limit = max_pixels()
    if h * w > limit:
        raise NoisedaError(
            f"{path}: {w}x{h} is over the pixel limit of {limit} (set NOISEDA_MAX_PIXELS to raise it)"
        )
    if h < 1 or w < 1:
        raise NoisedaError(f"{path}: empty image")


def _split(arr: np.ndarray, scale: float) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Integer or float array (HxW or HxWxC) -> float pixels HxWx{1,3} and optional alpha."""
    a = arr.astype(np.float32) / scale if scale != 1 else arr.astype(np.float32)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise ValueError(f"unsupported array shape {arr.shape}")
    c = a.shape[2]
    if c == 1 or c == 3:
        return a, None
    if c == 2:
        return a[:, :, :1], a[:, :, 1]
    if c == 4:
        return a[:, :, :3], a[:, :, 3]
    raise ValueError(f"unsupported channel count {c}")


def png_bit_depth(path: Path) -> int:
    with open(path, "rb") as f:
        head = f.read(25)
    return head[24] if len(head) == 25 and head[:8] == b"\x89PNG\r\n\x1a\n" else 8


def _read_png16(path: Path) -> Picture:
    import png

    w, h, rows, info = png.Reader(filename=str(path)).asDirect()
    _check_size(path, h, w)
    planes = info["planes"]
    arr = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(h, w, planes)
    pixels, alpha = _split(arr, 65535.0)
    return Picture(pixels, alpha, 16)


def _read_tiff(path: Path) -> Picture:
    import tifffile

    arr = tifffile.imread(str(path))
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 2, 3, 4):
        arr = np.moveaxis(arr, 0, 2)  # planar (CxHxW) layout
    _check_size(path, arr.shape[0], arr.shape[1])
    if arr.dtype == np.uint8:
        return Picture(*_split(arr, 255.0), 8)
    if arr.dtype == np.uint16:
        return Picture(*_split(arr, 65535.0), 16)
    if arr.dtype.kind == "f":
        pixels, alpha = _split(np.clip(arr, 0, 1), 1.0)
        return Picture(pixels, alpha, 32)
    raise ValueError(f"unsupported TIFF sample type {arr.dtype}")


ORIENTATION = 0x0112  # the EXIF tag that says how to turn the stored pixels upright


def _metadata(im: Image.Image, upright: bool) -> dict:
    """EXIF, ICC profile and frame count of an opened image (nothing decoded). ``upright``: the
    pixels were turned as the EXIF orientation says, so the written EXIF must say 1."""
    exif = Image.Exif()  # a copy: the image's own must keep its orientation until it is applied
    if len(im.getexif()):
        exif.load(im.getexif().tobytes())
    if upright and ORIENTATION in exif:
        exif[ORIENTATION] = 1
    return {"exif": exif.tobytes() if len(exif) else None, "icc": im.info.get("icc_profile") or None,
            "frames": getattr(im, "n_frames", 1)}


def _metadata_of(path: Path) -> dict:
    """The same for files decoded elsewhere (16-bit PNG, TIFF); their pixels are not turned."""
    try:
        with Image.open(path) as im:
            return _metadata(im, upright=False)
    except Exception:  # Pillow cannot open every TIFF; the pixels do not depend on it
        return {}


def _read_pillow(path: Path) -> Picture:
    with Image.open(path) as im:
        _check_size(path, im.height, im.width)
        im.load()
        meta = _metadata(im, upright=True)
        im = ImageOps.exif_transpose(im)
        mode = im.mode
        if mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im, dtype=np.int64).clip(0, 65535)
            return Picture(*_split(arr, 65535.0), 16, **meta)
        if mode == "F":
            return Picture(*_split(np.clip(np.asarray(im), 0, 1), 1.0), 32, **meta)
        if mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif mode in ("1",):
            im = im.convert("L")
        elif mode not in ("L", "LA", "RGB", "RGBA"):
            im = im.convert("RGB")  # CMYK, YCbCr, LAB, ...
        return Picture(*_split(np.asarray(im), 255.0), 8, **meta)


def read_image(path: str | Path) -> Picture:
    """Decode any supported image; a one-line NoisedaError for missing or corrupt files."""
    path = Path(path)
    if not path.is_file():
        raise NoisedaError(f"image not found: {path}")
    try:
        suffix = path.suffix.lower()
        if suffix in (".tif", ".tiff"):
            return dataclasses.replace(_read_tiff(path), **_metadata_of(path))
        if suffix == ".png" and png_bit_depth(path) == 16:
            return dataclasses.replace(_read_png16(path), **_metadata_of(path))
        return _read_pillow(path)
    except NoisedaError:
        raise
    except Exception as exc:  # decoders raise many types for truncated/corrupt data
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NoisedaError(f"cannot read image {path}: {reason}") from None


def file_mode() -> int:
    """The permissions a plain new file gets under this process's umask (0644 under 022).
    Temporary files (mkstemp, safetensors) are 0600; they get these before they are renamed into
    place, so colleagues sharing a machine or a model folder can read what noiseda writes."""
    try:  # Linux: read the umask without changing it (os.umask would, briefly, for every thread)
        with open("/proc/self/status") as f:
            mask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write a file under a temporary name in its folder, then rename it into place."""
    path = Path(path)
    data = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), file_mode())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def encode_image(pic: Picture, suffix: str, jpeg_quality: int = 95) -> bytes:
    suffix = suffix.lower()
    high = pic.bit_depth >= 16 and suffix in (".png", ".tif", ".tiff")
    # One float working copy, scaled and rounded in place (a huge image costs 4 bytes/value per copy).
    if pic.alpha is not None:
        arr = np.concatenate([pic.pixels, pic.alpha[:, :, None]], axis=2).astype(np.float32, copy=False)
    else:
        arr = np.array(pic.pixels, dtype=np.float32, copy=True)
    np.clip(arr, 0, 1, out=arr)
    arr *= 65535.0 if high else 255.0
    np.round(arr, out=arr)
    ints = arr.astype(np.uint16 if high else np.uint8)
    del arr
    if ints.shape[2] == 1:
        ints = ints[:, :, 0]
    buf = io.BytesIO()
    if suffix in (".tif", ".tiff"):
        import tifffile

        colour = ints.ndim == 3 and ints.shape[2] >= 3
        tifffile.imwrite(buf, ints, photometric="rgb" if colour else "minisblack", iccprofile=pic.icc)
    elif suffix == ".png" and high:
        import png

        h, w = ints.shape[:2]
        planes = 1 if ints.ndim == 2 else ints.shape[2]
        writer = png.Writer(w, h, greyscale=planes <= 2, alpha=planes in (2, 4), bitdepth=16)
        writer.write(buf, ints.reshape(h, w * planes))
        return _png_with_metadata(buf.getvalue(), pic)
    else:
        im = Image.fromarray(ints)
        meta = {k: v for k, v in (("exif", pic.exif), ("icc_profile", pic.icc)) if v}
        if suffix in (".jpg", ".jpeg"):
            im = im.convert("L" if ints.ndim == 2 else "RGB")  # JPEG has no alpha
            im.save(buf, format="JPEG", quality=jpeg_quality, **meta)
        else:
            fmt = {".png": "PNG", ".bmp": "BMP", ".webp": "WEBP"}.get(suffix)
            if fmt is None:
                raise NoisedaError(f"unsupported output format {suffix!r}")
            im.save(buf, format=fmt, **(meta if fmt != "BMP" else {}))
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_with_metadata(encoded: bytes, pic: Picture) -> bytes:
    """pypng writes no ICC or EXIF chunk: insert them after the header chunk (8-byte signature,
    then IHDR: 4 length + 4 type + 13 data + 4 CRC bytes), where PNG wants them."""
    chunks = b""
    if pic.icc:
        chunks += _png_chunk(b"iCCP", b"icc\0\0" + zlib.compress(pic.icc))
    if pic.exif:
        chunks += _png_chunk(b"eXIf", pic.exif.removeprefix(b"Exif\0\0"))
    return encoded[:33] + chunks + encoded[33:]


def write_image(path: str | Path, pic: Picture, jpeg_quality: int = 95) -> None:
    """Encode in memory, then write atomically (temporary name, then rename)."""
    path = Path(path)
    write_atomic(path, encode_image(pic, path.suffix, jpeg_quality))


def to_uint8(arr: np.ndarray) -> np.ndarray:
    return np.round(np.clip(arr, 0, 1) * 255).astype(np.uint8)
