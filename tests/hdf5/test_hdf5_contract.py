"""H5Backend passes the volumetric contract suite on real HDF5 files, plain and gzip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from h5_support import damage_chunk, is_stored, raw_read, raw_write, spec_for
from lamina_hdf5 import H5Backend

from lamina import VolumetricIndex
from lamina.testing import TestVolume, VolumetricBackendTests


class _H5Contract(VolumetricBackendTests):
    compression: str | None = None

    def make_backend(self, volume: TestVolume, path: Path) -> H5Backend:
        return H5Backend(f"{path}.h5", "vol", spec=spec_for(volume, self.compression))

    def raw_read(self, backend: Any, idx: VolumetricIndex) -> Any:
        return raw_read(backend, idx)

    def raw_write(self, backend: Any, idx: VolumetricIndex, data: Any) -> None:
        raw_write(backend, idx, data)

    def is_stored(self, backend: Any, idx: VolumetricIndex) -> bool:
        return is_stored(backend, idx)

    def damage_stored_chunk(self, backend: Any, idx: VolumetricIndex) -> bool:
        return damage_chunk(backend, idx)


class TestUncompressed(_H5Contract):
    compression = None


class TestGzip(_H5Contract):
    compression = "gzip"
