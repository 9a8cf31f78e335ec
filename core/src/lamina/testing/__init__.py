"""Contract test suites every backend passes, and helpers for testing plugins.

Subclass the suite of your backend's index scheme in a test module, in the style of
zarr-python's store tests::

    from lamina.testing import ObjectBackendTests

    class TestMyBackend(ObjectBackendTests):
        @pytest.fixture
        def backend(self, tmp_path):
            return MyBackend(tmp_path / "store")

        def raw_read(self, backend, idx): ...      # read storage without backend.read
        def raw_write(self, backend, idx, data): ...
        def is_stored(self, backend, idx): ...

(``VolumetricBackendTests`` is the suite of volumetric backends: implement
``make_backend(volume, path)`` instead of the ``backend`` fixture;
``KeyValueBackendTests`` is the suite of key-value backends: implement
``make_backend(path)`` and the row-level raw hooks ``raw_get_row``, ``raw_put_row`` and
``raw_row_keys``.)

Every contract test then runs on your backend; optional abilities are skipped or
checked according to ``backend.capabilities``. The ``lamina_host`` fixture (from the
``pytest11`` plugin) gives a test an isolated plugin host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lamina.lazy import module_getattr

# Imported on first use: lamina's pytest plugin imports this package in every pytest
# session of an environment with lamina installed, so it must not pull in numpy & co.
_LAZY: dict[str, str] = {
    "BackendContract": "lamina.testing.contracts",
    "ObjectBackendTests": "lamina.testing.contracts",
    "isolated_host": "lamina.testing.host",
    "plugin_listing": "lamina.testing.listing",
    "run_lamina": "lamina.testing.listing",
    "VALUE_SAMPLES": "lamina.testing.keyvalue",
    "KeyValueBackendTests": "lamina.testing.keyvalue",
    "assert_values_equal": "lamina.testing.keyvalue",
    "TestVolume": "lamina.testing.volumetric",
    "VolumetricBackendTests": "lamina.testing.volumetric",
    "random_data": "lamina.testing.volumetric",
    "second_round_page_faults": "lamina.testing.workers",
    "StandInHelper": "lamina.testing.pools",
    "affine": "lamina.testing.functions",
    "mean3": "lamina.testing.functions",
}

__all__ = [
    "VALUE_SAMPLES",
    "BackendContract",
    "KeyValueBackendTests",
    "ObjectBackendTests",
    "StandInHelper",
    "TestVolume",
    "VolumetricBackendTests",
    "affine",
    "assert_values_equal",
    "isolated_host",
    "mean3",
    "plugin_listing",
    "random_data",
    "run_lamina",
    "second_round_page_faults",
]

if TYPE_CHECKING:
    from lamina.testing.contracts import BackendContract, ObjectBackendTests
    from lamina.testing.functions import affine, mean3
    from lamina.testing.host import isolated_host
    from lamina.testing.keyvalue import VALUE_SAMPLES, KeyValueBackendTests, assert_values_equal
    from lamina.testing.listing import plugin_listing
    from lamina.testing.pools import StandInHelper
    from lamina.testing.volumetric import TestVolume, VolumetricBackendTests, random_data
    from lamina.testing.workers import second_round_page_faults


__getattr__ = module_getattr(__name__, _LAZY, globals())
