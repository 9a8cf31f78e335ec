"""Randomness done right: ``prob`` honoured in distribution, draws in distribution, a seed
that makes a sequence of calls (its coin included) reproducible, threads sharing a layer."""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from augment_support import image
from lamina_augment import MisalignProcessor, brightness_aug, normal_distr, uniform_distr

ZEROS = np.zeros((1, 2, 2, 2), np.float32)


def _within(count: int, n: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def test_prob_is_honoured_in_distribution() -> None:
    n = 4000
    applied = sum(float(brightness_aug(ZEROS, 1.0, prob=0.3)[0, 0, 0, 0]) == 1.0 for _ in range(n))
    assert _within(applied, n, 0.3)
    assert all(float(brightness_aug(ZEROS, 1.0, prob=0.0).max()) == 0 for _ in range(50))


def test_values_are_drawn_from_their_distribution() -> None:
    n = 4000
    uniform = np.array(
        [float(brightness_aug(ZEROS, uniform_distr(2, 4))[0, 0, 0, 0]) for _ in range(n)]
    )
    assert uniform.min() >= 2
    assert uniform.max() < 4
    assert abs(uniform.mean() - 3) < 5 * (2 / math.sqrt(12)) / math.sqrt(n)
    normal = np.array(
        [float(brightness_aug(ZEROS, normal_distr(1, 0.5))[0, 0, 0, 0]) for _ in range(n)]
    )
    assert abs(normal.mean() - 1) < 5 * 0.5 / math.sqrt(n)
    assert abs(normal.std() - 0.5) < 0.05


def test_a_seed_makes_a_sequence_reproducible_coin_included() -> None:
    def sequence(seed: int) -> list[float]:
        aug = functools.partial(
            brightness_aug, value_distr=uniform_distr(0, 1), prob=0.5, seed=seed
        )
        return [float(aug(ZEROS)[0, 0, 0, 0]) for _ in range(40)]

    first = sequence(11)
    # the function's sequence continues: a new process (or worker_init_fn) starts it again
    from lamina_augment import randomness

    randomness._COUNTERS.clear()
    assert sequence(11) == first
    assert 0 in first  # the coin is part of the sequence
    assert any(v > 0 for v in first)
    randomness._COUNTERS.clear()
    assert sequence(12) != first


def test_threads_sharing_one_augmented_layer() -> None:
    layer = image().with_procs(
        read_procs=[
            functools.partial(brightness_aug, value_distr=uniform_distr(10, 20)),
            MisalignProcessor(prob=0.5, disp_min_in_unit=8, disp_max_in_unit=40),
        ]
    )
    plain = image()

    def read(i: int) -> float:
        x = 16 + (i % 4) * 8
        out = layer[x : x + 64, 16:80, 2:14]
        assert out.shape == (1, 64, 64, 12)
        base = plain[x : x + 64, 16:80, 2:14]
        shift = float((out - base)[0, :, :, 0].mean())  # section 0 is never misaligned
        assert 10 <= shift < 20
        return shift

    with ThreadPoolExecutor(4) as pool:
        shifts = list(pool.map(read, range(400)))
    assert abs(np.mean(shifts) - 15) < 5 * (10 / math.sqrt(12)) / math.sqrt(400)


def test_seeded_members_of_a_layer_set_repeat_though_read_on_threads() -> None:
    from augment_support import R
    from lamina_augment import randomness

    import lamina

    def run() -> list[dict[str, np.ndarray]]:
        randomness._COUNTERS.clear()  # a new process
        members = {
            name: image().with_procs(
                read_procs=[
                    functools.partial(brightness_aug, value_distr=uniform_distr(0, 9), seed=seed),
                    MisalignProcessor(prob=0.5, disp_min_in_unit=8, disp_max_in_unit=32, seed=seed),
                ]
            )
            for name, seed in (("a", 1), ("b", 2), ("c", 3))
        }
        layer_set = lamina.build_volumetric_layer_set(
            members, default_desired_resolution=R, index_resolution=R
        )  # members are read on the set's threads
        return [layer_set[16:80, 16:80, 0:12] for _ in range(8)]

    first, again = run(), run()
    for a, b in zip(first, again, strict=True):
        for name in "abc":
            np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(first[0]["a"], first[0]["b"])
