"""lamina-augment: training augmentations as processors of lamina layers.

The reference system's augmentations under their names and parameters
(``brightness_aug``, ``clamp_values_aug``, ``square_tile_pattern_aug``,
``apply_to_random_sections``, ``apply_to_random_boxes``, ``MisalignProcessor``, with
``uniform_distr`` and ``normal_distr``), and ``gamma_aug``, ``contrast_aug``,
``gaussian_noise_aug``, ``gaussian_blur_aug``, ``missing_section_aug``,
``normalize_intensity`` and ``flip_rotate_aug``. Function augmentations are data
processors (use them in a spec with ``"@mode": "partial"``); ``MisalignProcessor`` and
``flip_rotate_aug`` are joint processors. Every call draws from its own generator
(:mod:`lamina_augment.randomness`): safe from many threads, reproducible with ``seed=``,
and :func:`worker_init_fn` for ``DataLoader`` workers. Names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lamina.lazy import module_getattr

_LAZY: dict[str, str] = {
    "brightness_aug": "lamina_augment.intensity",
    "clamp_values_aug": "lamina_augment.intensity",
    "gamma_aug": "lamina_augment.intensity",
    "contrast_aug": "lamina_augment.intensity",
    "gaussian_noise_aug": "lamina_augment.intensity",
    "normalize_intensity": "lamina_augment.intensity",
    "square_tile_pattern_aug": "lamina_augment.patterns",
    "apply_to_random_sections": "lamina_augment.regions",
    "apply_to_random_boxes": "lamina_augment.regions",
    "missing_section_aug": "lamina_augment.regions",
    "gaussian_blur_aug": "lamina_augment.regions",
    "MisalignProcessor": "lamina_augment.misalign",
    "FlipRotateAug": "lamina_augment.geometry",
    "uniform_distr": "lamina_augment.distributions",
    "normal_distr": "lamina_augment.distributions",
    "worker_init_fn": "lamina_augment.randomness",
}

__all__ = [
    "FlipRotateAug",
    "MisalignProcessor",
    "apply_to_random_boxes",
    "apply_to_random_sections",
    "brightness_aug",
    "clamp_values_aug",
    "contrast_aug",
    "gamma_aug",
    "gaussian_blur_aug",
    "gaussian_noise_aug",
    "missing_section_aug",
    "normal_distr",
    "normalize_intensity",
    "square_tile_pattern_aug",
    "uniform_distr",
    "worker_init_fn",
]

if TYPE_CHECKING:
    from lamina_augment.distributions import normal_distr, uniform_distr
    from lamina_augment.geometry import FlipRotateAug
    from lamina_augment.intensity import (
        brightness_aug,
        clamp_values_aug,
        contrast_aug,
        gamma_aug,
        gaussian_noise_aug,
        normalize_intensity,
    )
    from lamina_augment.misalign import MisalignProcessor
    from lamina_augment.patterns import square_tile_pattern_aug
    from lamina_augment.randomness import worker_init_fn
    from lamina_augment.regions import (
        apply_to_random_boxes,
        apply_to_random_sections,
        gaussian_blur_aug,
        missing_section_aug,
    )

__getattr__ = module_getattr(__name__, _LAZY, globals())
