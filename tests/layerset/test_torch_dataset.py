"""A layer set as a PyTorch sample source: ``lamina.torch.LayerDataset`` over a set of
precomputed members on local files, read by ``DataLoader`` workers under fork and spawn.

Under spawn each worker unpickles the dataset, so the set and its members are rebuilt
from their specs in the worker; under fork the workers inherit the set, whose thread
pool (started in the parent) is created again in each worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from layerset_support import RES, box

torch = pytest.importorskip("torch")
lamina_torch = pytest.importorskip("lamina.torch")

from lamina_layerset import build_volumetric_layer_set  # noqa: E402

import lamina  # noqa: E402
from lamina import BBox3D  # noqa: E402

BBOX = BBox3D.from_coords((0, 0, 0), (64, 64, 8), RES)


def cv_member(path: Path, dtype: str, channels: int = 1, volume_type: str = "image") -> Any:
    return lamina.build_cv_layer(
        f"file://{path}",
        info_type=volume_type,
        info_data_type=dtype,
        info_num_channels=channels,
        info_chunk_size=(16, 16, 4),
        info_bbox=BBOX,
        info_scales=[RES],
    )


@pytest.fixture(scope="module")
def training_set(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("training")
    layer_set = build_volumetric_layer_set(
        {
            "img": cv_member(root / "img", "uint8"),
            "seg": cv_member(root / "seg", "uint64", volume_type="segmentation"),
            "aff": cv_member(root / "aff", "float32", channels=3),
        },
        default_desired_resolution=RES,
    )
    rng = np.random.default_rng(0)
    whole = box((0, 0, 0), (64, 64, 8))
    layer_set[whole] = {
        "img": rng.integers(0, 256, (1, 64, 64, 8), dtype=np.uint8),
        "seg": rng.integers(2**40, 2**40 + 50, (1, 64, 64, 8), dtype=np.uint64),
        "aff": rng.random((3, 64, 64, 8), dtype=np.float32),
    }
    return layer_set


def indexer() -> Any:
    return lamina_torch.VolumetricStridedIndexer(
        BBOX, RES, chunk_size=(32, 32, 4), stride=(16, 16, 4), mode="shrink"
    )


def test_the_dataset_gives_dicts_of_tensors(training_set: Any) -> None:
    dataset = lamina_torch.LayerDataset(training_set, indexer())
    assert len(dataset) == 3 * 3 * 2
    item = dataset[4]
    assert set(item) == {"img", "seg", "aff"}
    assert item["img"].dtype == torch.uint8
    assert tuple(item["img"].shape) == (1, 32, 32, 4)
    assert item["seg"].dtype == torch.uint64
    assert tuple(item["aff"].shape) == (3, 32, 32, 4)
    direct = training_set[indexer()(4)]
    for key, value in direct.items():
        np.testing.assert_array_equal(item[key].numpy(), value)


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_workers_read_every_window(training_set: Any, context: str) -> None:
    import multiprocessing

    if context not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {context} on this platform")
    training_set[box((0, 0, 0), (16, 16, 4))]  # the parent's threads are running before fork
    windows = indexer()
    dataset = lamina_torch.LayerDataset(training_set, windows)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=4,
        num_workers=2,
        multiprocessing_context=context,
        timeout=120,
    )
    seen = 0
    for batch_number, batch in enumerate(loader):
        assert set(batch) == {"img", "seg", "aff"}
        for j in range(batch["img"].shape[0]):
            expected = training_set[windows(batch_number * 4 + j)]
            for key, value in expected.items():
                np.testing.assert_array_equal(batch[key][j].numpy(), value, err_msg=key)
            seen += 1
    assert seen == len(windows)
