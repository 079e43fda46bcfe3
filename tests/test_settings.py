"""Settings: defaults, validation with the allowed range in the message, round trips, schedules."""

import pytest

from jaxstyle.errors import SettingsError
from jaxstyle.settings import PRESETS, TransferSettings


def test_settings_stored_before_a_field_existed_rebuild_as_they_ran():
    """A run stored before pyramid levels and warm-up existed optimized pixels at a constant step."""
    stored = {k: v for k, v in TransferSettings().to_dict().items() if k not in ("pyramid_levels", "warmup_iterations")}
    old = TransferSettings.from_dict(stored)
    assert old.pyramid_levels == 1 and old.warmup_iterations == 0
    assert TransferSettings().pyramid_levels > 1 and TransferSettings().warmup_iterations > 0


def test_defaults_are_valid_and_round_trip_through_a_dict():
    settings = TransferSettings(style_blend=(0.7, 0.3), style_layer_weights=(1, 2, 3, 4, 5))
    assert TransferSettings.from_dict(settings.to_dict()) == settings


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"style_weight": -1}, "style_weight must be between 0 and 1e+06, got -1"),
        ({"size_px": 4096}, "size_px must be between 16 and 2048"),
        ({"iterations": 0}, "iterations must be between 1 and 5000"),
        ({"iterations": 2.5}, "iterations must be a whole number"),
        ({"content_weight": float("nan")}, "content_weight must be a number between 0 and 1e+06"),
        ({"learning_rate": "fast"}, "learning_rate must be a number"),
        ({"optimizer": "sgd"}, "optimizer must be one of adam, lbfgs"),
        ({"style_layers": ("conv9_9",)}, "unknown layer(s) conv9_9"),
        ({"style_layers": ()}, "style_layers must name at least one VGG19 layer"),
        ({"style_layer_weights": (1, 2)}, "one weight per style layer (5)"),
        ({"style_blend": (0, 0)}, "positive sum"),
        ({"scale_min_px": 8}, "scale_min_px must be 0 (off) or at least 16"),
        ({"pyramid_levels": 0}, "pyramid_levels must be between 1 and 8"),
        ({"warmup_iterations": -1}, "warmup_iterations must be between 0 and 5000"),
    ],
)
def test_bad_values_name_the_setting_and_its_range(changes, message):
    with pytest.raises(SettingsError) as error:
        TransferSettings(**changes)
    assert message in str(error.value)


def test_unknown_keys_from_a_stored_run_are_refused():
    with pytest.raises(SettingsError, match="unknown setting"):
        TransferSettings.from_dict({"style_wieght": 3})


def test_coarse_to_fine_schedule_grows_by_sqrt2_to_the_target():
    settings = TransferSettings(size_px=512, scale_min_px=128, scale_iterations=20, iterations=50)
    assert settings.scales() == [128, 181, 256, 362, 512]
    assert settings.steps_per_scale() == [20, 20, 20, 20, 50]
    assert settings.total_iterations() == 130
    assert TransferSettings(size_px=256).scales() == [256]


def test_presets_are_valid_settings():
    assert set(PRESETS) == {"Quick preview", "Balanced", "High quality"}
    assert all(isinstance(p, TransferSettings) for p in PRESETS.values())


def test_blend_rule_normalizes_and_checks_the_count():
    from jaxstyle.settings import blend_weights

    assert blend_weights(None, 2) == (0.5, 0.5)
    assert blend_weights((3, 1), 2) == (0.75, 0.25)
    assert TransferSettings(style_blend=(1, 3)).blend_for(2) == (0.25, 0.75)
    with pytest.raises(SettingsError, match="2 weights for 3 style"):
        blend_weights((1, 1), 3)
    with pytest.raises(SettingsError, match="positive sum"):
        blend_weights((0, 0), 2)
    with pytest.raises(SettingsError, match="at least one style"):
        blend_weights(None, 0)
