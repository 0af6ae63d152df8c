"""Seeds, crops, flips, the training sample streams and the step sampler.

Every random draw of a training sample (which file, which crop, which of the
8 flips/rotations, which noise) is a function of (seed, global sample number)
alone. So a run is reproducible with any number of loader workers, and
resuming at step k needs nothing but k.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from noiseda.data.store import ImageStore, to_tensor
from noiseda.errors import NoisedaError


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
