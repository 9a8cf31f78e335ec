"""CVBackend passes the volumetric contract suite on local paths, file://, mem:// and s3://."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from lamina_precomputed import CVBackend
from lamina_precomputed.testing import damage_chunk
from precomputed_support import is_stored, raw_read, raw_write, spec_for

from lamina import VolumetricIndex
from lamina.testing import TestVolume, VolumetricBackendTests


class _CVContract(VolumetricBackendTests):
    """The suite with raw hooks through plain CloudVolume and storage listings."""

    def location(self, path: Path) -> str:
        raise NotImplementedError

    def make_backend(self, volume: TestVolume, path: Path) -> CVBackend:
        return CVBackend(self.location(path), info_spec=spec_for(volume))

    def raw_read(self, backend: Any, idx: VolumetricIndex) -> Any:
        return raw_read(backend.name, idx)

    def raw_write(self, backend: Any, idx: VolumetricIndex, data: Any) -> None:
        raw_write(backend.name, idx, data)

    def is_stored(self, backend: Any, idx: VolumetricIndex) -> bool:
        return is_stored(backend, idx)

    def damage_stored_chunk(self, backend: Any, idx: VolumetricIndex) -> bool:
        return damage_chunk(backend, idx)


class TestLocalPath(_CVContract):
    def location(self, path: Path) -> str:
        return str(path)


class TestFileURL(_CVContract):
    def location(self, path: Path) -> str:
        return f"file://{path}"


class TestMem(_CVContract):
    def location(self, path: Path) -> str:
        return f"mem://lamina-contract/{path.name}-{uuid.uuid4().hex[:8]}"


class TestS3(_CVContract):
    @pytest.fixture(autouse=True)
    def _s3(self, s3_root: str) -> None:
        self.root = s3_root

    def location(self, path: Path) -> str:
        return f"{self.root}/{path.name}-{uuid.uuid4().hex[:8]}"
