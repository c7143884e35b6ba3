"""Configuration dataclasses: frozen, validated, JSON round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from ptycho_engine.config import DataConfig, ModelConfig, TrainingConfig
from ptycho_engine.errors import ConfigError


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [
        (ModelConfig, "N", 48),
        (ModelConfig, "N", 512),
        (ModelConfig, "N", 64.0),
        (ModelConfig, "gridsize", 4),
        (ModelConfig, "gridsize", 0),
        (ModelConfig, "n_filters_scale", 0),
        (ModelConfig, "amp_activation", "relu"),
        (ModelConfig, "probe_scale", -1.0),
        (ModelConfig, "probe_scale", float("nan")),
        (ModelConfig, "pad_object", "yes"),
        (ModelConfig, "shared_decoder", 1),
        (ModelConfig, "decoder_divisor", 3),
        (DataConfig, "neighbor_count", 0),
        (DataConfig, "n_groups", 0),
        (DataConfig, "validation_fraction", 0.7),
        (DataConfig, "validation", "patterns"),
        (TrainingConfig, "epochs", -1),
        (TrainingConfig, "batch_size", 0),
        (TrainingConfig, "learning_rate", 0.0),
        (TrainingConfig, "nll_weight", -1.0),
        (TrainingConfig, "reduce_lr_factor", 1.5),
        (TrainingConfig, "seed", -3),
    ],
)
def test_bad_values_raise_naming_field_and_value(cls: type, field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field) as info:
        cls(**{field: value})
    assert isinstance(info.value, ConfigError)
    assert repr(value) in str(info.value)


def test_both_loss_weights_zero_is_refused() -> None:
    with pytest.raises(ConfigError, match="nll_weight"):
        TrainingConfig(nll_weight=0.0, mae_weight=0.0)


@pytest.mark.parametrize("cls", [ModelConfig, DataConfig, TrainingConfig])
def test_frozen_and_json_round_trip(cls: type) -> None:
    cfg = cls()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 3  # type: ignore[misc]
    text = json.dumps(cfg.to_dict())
    assert cls.from_dict(json.loads(text)) == cfg


def test_replace_validates_again() -> None:
    cfg = ModelConfig()
    assert dataclasses.replace(cfg, N=128).N == 128
    with pytest.raises(ConfigError, match="gridsize"):
        dataclasses.replace(cfg, gridsize=5)


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown field"):
        ModelConfig.from_dict({"N": 64, "colour": "red"})


def test_a_model_config_written_before_the_decoder_fields_reads_as_two_full_decoders() -> None:
    """run.json files and recipes written before ``shared_decoder`` existed describe networks
    with one full-width decoder per head: reading them must rebuild that network, not the
    new default (whose weights would not fit)."""
    old = ModelConfig().to_dict()
    del old["shared_decoder"], old["decoder_divisor"]
    cfg = ModelConfig.from_dict(old)
    assert (cfg.shared_decoder, cfg.decoder_divisor) == (False, 1)
    assert (ModelConfig().shared_decoder, ModelConfig().decoder_divisor) == (True, 2)


def test_a_data_config_written_before_the_validation_field_reads_as_held_out_groups() -> None:
    """Run records written before ``validation`` existed validated on held-out groups."""
    old = DataConfig().to_dict()
    del old["validation"]
    assert DataConfig.from_dict(old).validation == "groups"
    assert DataConfig().validation == "pixels"
    assert DataConfig.from_dict(DataConfig().to_dict()) == DataConfig()
