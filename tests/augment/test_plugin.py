"""lamina-augment as a plugin: specs with the reference's names build and run, ``lamina
plugins`` lists its processors, and a ``LayerDataset`` with augmentations under
``DataLoader(num_workers=2)`` gives each worker its own draws, again with the same seed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from augment_support import BOX, R, image

import lamina
from lamina.testing import run_lamina


def test_a_spec_with_the_reference_names_builds_and_runs() -> None:
    procs = lamina.build(
        [
            {
                "@type": "brightness_aug",
                "@mode": "partial",
                "prob": 1.0,
                "value_distr": {"@type": "uniform_distr", "low": 1, "high": 1},
            },
            {"@type": "clamp_values_aug", "@mode": "partial", "prob": 1.0, "high_distr": 1.5},
            {
                "@type": "MisalignProcessor",
                "prob": 1.0,
                "disp_min_in_unit": 16,
                "disp_max_in_unit": 32,
                "mode": "step",
            },
        ]
    )
    out = image().with_procs(read_procs=procs)[32:96, 32:64, 0:8]
    assert out.shape == (1, 64, 32, 8)
    assert float(out.min()) >= 1.0
    assert float(out.max()) == 1.5


def test_lamina_plugins_lists_the_augmentations() -> None:
    listed = run_lamina("plugins")
    assert listed.returncode == 0, listed.stderr
    assert "lamina-augment" in listed.stdout
    for name in ("MisalignProcessor", "brightness_aug", "flip_rotate_aug", "uniform_distr"):
        assert name in listed.stdout


def _loader_samples(seed: int) -> list[Any]:
    torch = pytest.importorskip("torch")
    import functools

    from lamina_augment import brightness_aug, uniform_distr, worker_init_fn

    from lamina.torch import LayerDataset, VolumetricStridedIndexer

    layer = image().with_procs(
        read_procs=[functools.partial(brightness_aug, value_distr=uniform_distr(0, 100), seed=seed)]
    )
    indexer = VolumetricStridedIndexer(
        bbox=BOX, resolution=R, chunk_size=(32, 32, 8), stride=(32, 32, 8)
    )
    dataset = LayerDataset(layer, indexer)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=2, num_workers=2, worker_init_fn=worker_init_fn
    )
    return [batch.numpy() for batch in loader]


def test_dataloader_workers_draw_apart_and_repeat_with_the_same_seed() -> None:
    first = _loader_samples(seed=21)
    again = _loader_samples(seed=21)
    assert len(first) == len(again) == 12  # 4 x 3 x 2 samples in batches of 2
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    from lamina.torch import VolumetricStridedIndexer

    plain = image()
    indexer = VolumetricStridedIndexer(
        bbox=BOX, resolution=R, chunk_size=(32, 32, 8), stride=(32, 32, 8)
    )
    # batches 0 and 1 are the first of workers 0 and 1: each its worker's first draw
    shifts = [float((first[b][0] - plain[indexer(2 * b)]).mean()) for b in (0, 1)]
    assert all(0 <= s < 100 for s in shifts)
    assert abs(shifts[0] - shifts[1]) > 1e-3
    other = _loader_samples(seed=22)
    assert not np.array_equal(first[0], other[0])
