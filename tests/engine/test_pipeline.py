"""The one pipeline: recipe, events, scoring, stopping, the run-folder writer, JSON."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import numpy as np
import pytest

from ptycho_engine import jsonio, runs
from ptycho_engine.config import ModelConfig, TrainingConfig
from ptycho_engine.data import StepProgress
from ptycho_engine.errors import ConfigError, DataError
from ptycho_engine.io import read_product, write_pinn_npz
from ptycho_engine.pipeline import (
    DataSource,
    EpochFinished,
    PartialImage,
    StageChanged,
    recipe,
    run,
)
from ptycho_engine.simulate import simulate_dataset
from ptycho_engine.streams import drain

TINY = {"n_filters_scale": 1, "batch_size": 16, "n_groups": 32}


@pytest.fixture(scope="module")
def data() -> object:
    return simulate_dataset(N=32, n_positions=60, photons=1e5, seed=4)


def test_recipe_is_the_one_set_of_defaults() -> None:
    spec = recipe(32, 1, 30, loss="mae", learning_rate=1e-6)
    assert (spec.training.nll_weight, spec.training.mae_weight) == (0.0, 1.0)
    # the learning-rate floor never exceeds the initial rate
    assert spec.training.min_learning_rate == 1e-6
    assert recipe(32, 1, 30).training.min_learning_rate == 1e-5
    assert spec.preparation.N == spec.model.N == 32
    assert spec.training.seed == spec.grouping.seed == 0
    assert recipe(32, 1, 3, seed=5).grouping.seed == 5
    with pytest.raises(ConfigError, match="unknown setting"):
        recipe(32, 1, 3, no_such_option=1)
    with pytest.raises(ConfigError, match="loss"):
        recipe(32, 1, 3, loss="l2")


@pytest.mark.parametrize(("epochs", "warmup"), [(1, 0), (2, 0), (3, 1), (7, 2), (30, 3)])
def test_the_warmup_rule(epochs: int, warmup: int) -> None:
    assert TrainingConfig(epochs=epochs).warmup_epochs == warmup
    assert recipe(32, 1, epochs).training.warmup_epochs == warmup
    assert TrainingConfig(epochs=epochs, mae_warmup_epochs=0).warmup_epochs == 0


def test_spec_round_trips_through_json() -> None:
    spec = recipe(64, 2, 5, loss="mae", preparation="bin", score_epochs=(3, 1), **TINY)
    assert spec.score_epochs == (1, 3)
    back = type(spec).from_dict(json.loads(json.dumps(spec.to_dict())))
    assert back == spec
    with pytest.raises(ConfigError, match="unknown field"):
        type(spec).from_dict({**spec.to_dict(), "extra": 1})


def test_a_run_streams_stages_epochs_images_and_scores(data: object) -> None:
    spec = recipe(32, 2, 2, preview_every=1, **TINY)
    events: list[object] = []
    result = drain(run(spec, data), events.append)  # type: ignore[arg-type]
    stages = [e.stage for e in events if isinstance(e, StageChanged)]
    assert stages[:4] == [
        "preparing data",
        "building the model",
        "first step (compiling)",
        "training",
    ]
    # the last epoch's preview is the final image, scored already: no second stitch or score
    assert "reconstructing" not in stages and "scoring" not in stages
    epochs = [e for e in events if isinstance(e, EpochFinished)]
    assert [e.snapshot.epoch for e in epochs] == [1, 2]
    # every stitched epoch is scored against the ground truth, with its chance level
    assert all(e.scores is not None and e.chance is not None for e in epochs)
    images = [e for e in events if isinstance(e, PartialImage)]
    assert [i.epoch for i in images] == [1, 2]
    assert result.reconstruction is images[-1].image  # the last preview is the final image
    assert result.scores is not None
    assert result.scores.report.amplitude.ssim == epochs[-1].scores.amplitude.ssim
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert all(h["metrics"]["reconstruction"]["amplitude"]["ssim"] for h in result.history)
    assert result.steps == 2 * 2  # 30 training groups of 32 (5 % held out), batch 16
    assert not result.stopped
    assert set(result.timings_s) >= {"prepare", "train", "previews", "scoring", "total"}
    assert result.details["model_config"]["N"] == 32


def test_without_previews_the_final_image_is_stitched_with_the_chosen_window(
    data: object,
) -> None:
    spec = recipe(32, 1, 1, preview_every=0, stitch_window="probe", **TINY)
    events: list[object] = []
    result = drain(run(spec, data), events.append)  # type: ignore[arg-type]
    stages = [e.stage for e in events if isinstance(e, StageChanged)]
    assert "reconstructing" in stages
    assert result.reconstruction is not None and result.reconstruction.done
    assert [h["metrics"] for h in result.history] == [None]


def test_step_progress_comes_before_the_first_step(data: object) -> None:
    spec = recipe(32, 1, 1, preview_every=0, **TINY)
    events: list[object] = []
    drain(run(spec, data), events.append)  # type: ignore[arg-type]
    steps = [e for e in events if isinstance(e, StepProgress)]
    assert steps[0].stage == "building the model"
    assert steps[1].stage == "first step (compiling)" and steps[1].steps == 0


def test_each_epoch_end_reports_its_validation_and_preview(data: object) -> None:
    """The end of an epoch (validation, preview) is no silent gap: progress says what runs."""
    spec = recipe(32, 1, 2, preview_every=1, **TINY)
    events: list[object] = []
    drain(run(spec, data), events.append)  # type: ignore[arg-type]
    for epoch in (1, 2):
        end = next(
            i
            for i, e in enumerate(events)
            if isinstance(e, EpochFinished) and e.snapshot.epoch == epoch
        )
        stages = [e.stage for e in events[:end] if isinstance(e, StepProgress) and e.epoch == epoch]
        before = [s for k, s in enumerate(stages) if k == 0 or s != stages[k - 1]]
        assert before[-3:] == ["validating", "stitching a preview", "scoring the preview"], before
        done = [e for e in events[:end] if isinstance(e, StepProgress) and e.epoch == epoch]
        assert done[-1].steps == events[end].snapshot.steps  # every step of the epoch ran


def test_a_stop_between_epochs_ends_with_a_stopped_snapshot_and_no_preview(
    data: object,
) -> None:
    stop = threading.Event()
    spec = recipe(32, 1, 5, preview_every=1, **TINY)
    events: list[object] = []

    def on_event(event: object) -> None:
        events.append(event)
        if isinstance(event, EpochFinished) and event.snapshot.epoch == 2:
            stop.set()  # at an epoch boundary, after epoch 2's preview

    result = drain(run(spec, data, stop_event=stop), on_event)  # type: ignore[arg-type]
    epochs = [e.snapshot for e in events if isinstance(e, EpochFinished)]
    assert [(s.epoch, s.stopped) for s in epochs] == [(1, False), (2, False), (2, True)]
    assert epochs[-1].preview is None
    assert epochs[-1].steps == epochs[-2].steps  # no step after the stop
    assert result.stopped
    # the result keeps the last image made, and its scores come from that epoch
    assert result.reconstruction is epochs[1].preview
    assert result.history[-1]["epoch"] == 2


def test_a_stop_during_a_preview_cuts_it_short(data: object, monkeypatch) -> None:
    from ptycho_engine import training

    stop = threading.Event()
    real = training.reconstruct

    def stopping_reconstruct(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        gen = real(*args, **kwargs)  # type: ignore[arg-type]
        first = next(gen)
        stop.set()  # the user presses Stop while the preview is being stitched
        yield first
        return (yield from gen)

    monkeypatch.setattr(training, "reconstruct", stopping_reconstruct)
    spec = recipe(32, 1, 3, preview_every=1, **TINY)
    # 150 positions: the preview stitches 3 batches of 64 groups
    more = simulate_dataset(N=32, n_positions=150, photons=1e5, seed=4)
    events: list[object] = []
    result = drain(run(spec, more, stop_event=stop), events.append)
    epochs = [e.snapshot for e in events if isinstance(e, EpochFinished)]
    assert [(s.epoch, s.stopped, s.preview is None) for s in epochs] == [(1, True, True)]
    assert result.stopped and result.reconstruction is None


def test_the_run_folder_is_written_once_and_read_back(data: object, tmp_path: Path) -> None:
    spec = recipe(32, 1, 1, preview_every=1, **TINY)
    result = drain(run(spec, data))  # type: ignore[arg-type]
    folder = tmp_path / "run"
    written = runs.write_run_folder(folder, result, {"command": "test"})
    names = {p.name for p in written}
    assert names == {
        "reconstruction.npz",
        "reconstruction.h5",
        "amplitude.png",
        "phase.png",
        "model.weights.h5",
        "run.json",
    }
    text = (folder / "run.json").read_text(encoding="utf-8")

    def refuse(constant: str) -> None:
        raise AssertionError(f"non-strict JSON constant {constant} in run.json")

    raw = json.loads(text, parse_constant=refuse)
    assert raw["context"] == {"command": "test"}
    assert raw["metrics"]["flags"] == list(result.scores.report.flags)  # type: ignore[union-attr]
    info, image = runs.read_run(folder)
    assert info["spec"] == spec.to_dict()
    assert result.reconstruction is not None
    np.testing.assert_array_equal(image.object, result.reconstruction.object)
    product = read_product(folder / "reconstruction.h5")
    np.testing.assert_array_equal(product.object[0], result.reconstruction.object)
    # a simulation has no geometry: the product says that 1 m stands for a pixel
    assert product.object_pixel_m == (1.0, 1.0)
    assert runs.UNKNOWN_PIXEL_COMMENT in product.metadata["comments"]


def test_a_data_source_is_read_by_the_pipeline(data: object, tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    write_pinn_npz(path, data)  # type: ignore[arg-type]
    spec = recipe(32, 1, 1, preview_every=0, **TINY)
    events: list[object] = []
    from_file = drain(run(spec, DataSource(str(path))), events.append)
    in_memory = drain(run(spec, data))  # type: ignore[arg-type]
    assert isinstance(events[0], StageChanged) and events[0].stage == "reading data"
    assert from_file.data_info["path"] == str(path)
    assert "load" in from_file.timings_s
    assert from_file.scores is not None and in_memory.scores is not None
    assert from_file.scores.report.amplitude.ssim == pytest.approx(
        in_memory.scores.report.amplitude.ssim, abs=1e-6
    )


def test_a_run_without_a_probe_names_the_file(data: object) -> None:
    bare = data.replace(probe=None, probe_modes=None)  # type: ignore[attr-defined]
    with pytest.raises(DataError, match="no probe"):
        drain(run(recipe(32, 1, 1, **TINY), bare))


def test_json_keeps_non_finite_numbers_as_strings(tmp_path: Path) -> None:
    payload = {
        "nan": math.nan,
        "inf": np.float32(np.inf),
        "ninf": -math.inf,
        "int": np.int64(3),
        "flag": np.bool_(True),
        "list": (1.5, np.float64(2.5)),
        "array": np.array([1.0, np.nan]),
    }
    path = jsonio.write_json(tmp_path / "x.json", payload)
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["nan"] == "nan" and raw["inf"] == "inf" and raw["ninf"] == "-inf"
    assert raw["int"] == 3 and raw["flag"] is True and raw["list"] == [1.5, 2.5]
    back = jsonio.read_json(path)
    assert math.isnan(back["nan"]) and back["inf"] == math.inf and back["ninf"] == -math.inf
    assert back["array"][0] == 1.0 and math.isnan(back["array"][1])
    with pytest.raises(TypeError, match="object"):
        jsonio.to_json({"x": object()})


def test_early_stopping_is_said_and_recorded_and_the_image_is_the_best_epochs(
    data: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ptycho_engine.training as training_module
    from ptycho_engine.pipeline import Notice

    monkeypatch.setattr(training_module, "EARLY_STOP_MIN_STEPS", 0)
    spec = recipe(
        32,
        1,
        12,
        learning_rate=0.02,  # far too high: the validation loss rises after a few epochs
        reduce_lr_patience=0,
        early_stopping_patience=2,
        early_stopping_tolerance=0.0,
        mae_warmup_epochs=1,
        validation_fraction=0.25,
        preview_every=1,
        # the network on which that rise was measured (the default one may not rise in time)
        **ModelConfig.LEGACY_DECODER,
        **TINY,
    )
    events: list[object] = []
    result = drain(run(spec, data), events.append)  # type: ignore[arg-type]
    notices = [e.text for e in events if isinstance(e, Notice)]
    said = [t for t in notices if "early stopping" in t]
    record = result.details["early_stopping"]
    assert 0 < record["restored_epoch"] < record["stopped_at_epoch"] < 12
    assert said == [
        f"early stopping after epoch {record['stopped_at_epoch']}: the validation loss had "
        f"stopped improving; restored the weights of epoch {record['restored_epoch']}, the best "
        f"validation loss ({record['best_val_loss']:.6g}; the last epoch had "
        f"{record['last_val_loss']:.6g})"
    ]
    epochs = [e.snapshot for e in events if isinstance(e, EpochFinished)]
    assert epochs[-1].epoch == record["stopped_at_epoch"]
    # the final image is the restored model's (the last epoch's preview, made after the restore)
    images = [e for e in events if isinstance(e, PartialImage) and e.image.done]
    assert result.reconstruction is images[-1].image
    runs.write_run_folder(tmp_path / "run", result, {"command": "test"})
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["details"]["early_stopping"]["restored_epoch"] == record["restored_epoch"]


def test_a_raster_scans_grid_pattern_is_divided_out_and_recorded(data: object) -> None:
    from ptycho_engine.pipeline import Notice

    raster = simulate_dataset(N=32, n_positions=64, photons=1e5, scan="raster", seed=5)
    results = {}
    for remove in (True, False):
        spec = recipe(32, 1, 1, preview_every=0, remove_grid_pattern=remove, **TINY)
        events: list[object] = []
        results[remove] = drain(run(spec, raster), events.append)  # type: ignore[arg-type]
        notices = [e.text for e in events if isinstance(e, Notice)]
        assert any("scan grid's pattern" in text for text in notices) == remove
    on, off = results[True], results[False]
    grid = on.details["grid_pattern"]
    assert off.details["grid_pattern"] is None
    assert set(grid) == {"step_px", "offset_px", "amplitude_rms", "phase_rms_rad"}
    assert grid["step_px"] == pytest.approx([4.0, 4.0], rel=0.05)
    # the same network (same seed), stitched the same way, then the pattern divided out
    assert np.array_equal(on.reconstruction.valid, off.reconstruction.valid)
    assert not np.array_equal(on.reconstruction.object, off.reconstruction.object)
    # a spiral scan is left as it is, and says so in its record
    spiral = drain(run(recipe(32, 1, 1, preview_every=0, **TINY), data))
    assert spiral.details["grid_pattern"] is None


def test_a_spec_stored_before_the_grid_pattern_key_reads_as_kept() -> None:
    spec = recipe(32, 1, 1, **TINY)
    assert spec.remove_grid_pattern
    stored = spec.to_dict()
    del stored["remove_grid_pattern"]
    assert not type(spec).from_dict(stored).remove_grid_pattern
    with pytest.raises(ConfigError, match="remove_grid_pattern"):
        recipe(32, 1, 1, remove_grid_pattern="yes")
