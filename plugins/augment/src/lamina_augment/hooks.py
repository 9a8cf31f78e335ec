"""Hook module announced by the ``lamina`` entry point: every augmentation and
distribution by import string, so discovering plugins imports nothing else of this
distribution."""

from __future__ import annotations

from lamina.plugins.hookspecs import hookimpl
from lamina.plugins.registrar import Registrar

#: registered name -> import string
PROCESSORS = {
    "brightness_aug": "lamina_augment.intensity:brightness_aug",
    "clamp_values_aug": "lamina_augment.intensity:clamp_values_aug",
    "gamma_aug": "lamina_augment.intensity:gamma_aug",
    "contrast_aug": "lamina_augment.intensity:contrast_aug",
    "gaussian_noise_aug": "lamina_augment.intensity:gaussian_noise_aug",
    "normalize_intensity": "lamina_augment.intensity:normalize_intensity",
    "square_tile_pattern_aug": "lamina_augment.patterns:square_tile_pattern_aug",
    "apply_to_random_sections": "lamina_augment.regions:apply_to_random_sections",
    "apply_to_random_boxes": "lamina_augment.regions:apply_to_random_boxes",
    "missing_section_aug": "lamina_augment.regions:missing_section_aug",
    "gaussian_blur_aug": "lamina_augment.regions:gaussian_blur_aug",
    "MisalignProcessor": "lamina_augment.misalign:MisalignProcessor",
    "flip_rotate_aug": "lamina_augment.geometry:FlipRotateAug",
}


@hookimpl
def lamina_register_processors(registry: Registrar) -> None:
    for name, target in PROCESSORS.items():
        registry.register(name, target)


@hookimpl
def lamina_register_builders(registry: Registrar) -> None:
    registry.register(
        "uniform_distr", "lamina_augment.distributions:uniform_distr", kind="distribution"
    )
    registry.register(
        "normal_distr", "lamina_augment.distributions:normal_distr", kind="distribution"
    )
