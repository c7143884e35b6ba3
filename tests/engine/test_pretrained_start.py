"""The pretrained start: which network fits, its first image, the far-field residual and the
out-of-distribution warning, and the opt-out (engine, command line)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import ptycho_engine.pretrain as pretrain_module
from ptycho_engine.cli import main
from ptycho_engine.config import ModelConfig
from ptycho_engine.models import intensity_scale_for, rebuild_from
from ptycho_engine.pipeline import EpochFinished, Notice, PartialImage, StageChanged, recipe, run
from ptycho_engine.pretrain import (
    OOD_FACTOR,
    far_field_residual,
    find_pretrained,
    load_pretrained,
    network_name,
    ood_warning,
    pretrained_start,
)
from ptycho_engine.simulate import simulate_dataset
from ptycho_engine.streams import drain

TINY = {"batch_size": 16, "n_groups": 32}


@pytest.fixture(scope="module")
def data() -> object:
    return simulate_dataset(N=32, n_positions=60, photons=1e5, seed=4)


def test_the_network_must_match_and_the_physics_may_differ(shipped: Path) -> None:
    recipe_path = shipped / f"{network_name(32, 1)}.json"
    assert find_pretrained(ModelConfig(N=32, gridsize=1), shipped) == recipe_path
    # the probe scale and its rule only set the physics layer: the same network serves them
    assert find_pretrained(ModelConfig(N=32, gridsize=1, probe_scale=2.0), shipped) == recipe_path
    for other in (
        ModelConfig(N=32, gridsize=1, n_filters_scale=2),
        ModelConfig(N=32, gridsize=2),
        ModelConfig(N=64, gridsize=1),
        ModelConfig(N=32, gridsize=1, input_backprojection=False),
    ):
        assert find_pretrained(other, shipped) is None
    assert find_pretrained(ModelConfig(N=32, gridsize=1), shipped / "missing") is None


def test_the_recipe_keeps_the_residual_on_fresh_members_of_the_family(shipped: Path) -> None:
    recipe = json.loads((shipped / f"{network_name(32, 1)}.json").read_text())
    reference = recipe["residual_reference"]
    assert reference["members"] == 2 and len(reference["values"]) == 2
    assert all(np.isfinite(v) for v in reference["values"])
    assert reference["p90"] == pytest.approx(np.percentile(reference["values"], 90))
    assert "--reference-members 2" in recipe["command"]


def test_the_residual_is_small_for_the_right_physics_and_large_for_a_wrong_one(
    shipped: Path, data: object
) -> None:
    config = ModelConfig(N=32, gridsize=1)
    path = find_pretrained(config, shipped)
    assert path is not None
    bundle = pretrained_start(path, config, data, data.probe)
    right = far_field_residual(bundle, data)
    # ten times the counts the data have: the predicted amplitudes are about 3x the measured
    wrong = rebuild_from(bundle, data.probe, 10 * intensity_scale_for(data.photons_per_pattern, 32))
    assert np.isfinite(right) and right < 1.0
    assert far_field_residual(wrong, data) > 3.0 + right


def test_the_ood_warning_compares_with_the_family(tmp_path: Path) -> None:
    path = tmp_path / "pinn-N32-g1.json"
    path.write_text(json.dumps({"residual_reference": {"p90": 0.05}}))
    assert ood_warning(path, 0.05 * OOD_FACTOR * 0.9) == ""
    warning = ood_warning(path, 0.05 * OOD_FACTOR * 2)
    assert "unlike" in warning and "pinn-N32-g1" in warning
    assert "iterative solver" in warning and "fine-tune" in warning
    path.write_text(json.dumps({}))
    assert ood_warning(path, 10.0) == ""  # no reference: nothing to compare with


def test_a_run_starts_from_the_pretrained_network_and_shows_its_image_first(
    shipped: Path, data: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pretrain_module, "PRETRAINED_DIR", shipped)
    events: list[object] = []
    result = drain(run(recipe(32, 1, 3, **TINY), data), events.append)  # type: ignore[arg-type]
    stages = [e.stage for e in events if isinstance(e, StageChanged)]
    assert "loading the pretrained network" in stages
    first_image = next(i for i, e in enumerate(events) if isinstance(e, PartialImage))
    first_epoch = next(i for i, e in enumerate(events) if isinstance(e, EpochFinished))
    assert first_image < first_epoch  # the pretrained inference before any training
    said = [e.text for e in events if isinstance(e, Notice)]
    assert any("pretrained network pinn-N32-g1" in text for text in said)
    details = result.details
    assert details["start"] == "pretrained"
    assert details["pretrained"]["network"] == "pinn-N32-g1"
    assert np.isfinite(details["pretrained"]["far_field_residual"])
    # the network is past the fog: no MAE warm-up (the default rule gives 3 epochs one)
    assert [s["stage"] for s in result.history] == ["main"] * 3

    scratch = drain(run(recipe(32, 1, 3, pretrained=False, **TINY), data))
    assert scratch.details["start"] == "scratch" and scratch.details["pretrained"] == {}
    assert [s["stage"] for s in scratch.history] == ["mae-warmup", "main", "main"]


def test_inference_alone_is_the_pretrained_image(
    shipped: Path, data: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pretrain_module, "PRETRAINED_DIR", shipped)
    events: list[object] = []
    result = drain(run(recipe(32, 1, 0, **TINY), data), events.append)  # type: ignore[arg-type]
    assert result.reconstruction is not None and result.reconstruction.done
    assert result.steps == 0 and result.details["start"] == "pretrained"
    # the stream's last image is the result: no second stitch
    assert "reconstructing" not in [e.stage for e in events if isinstance(e, StageChanged)]
    loaded = load_pretrained(shipped / "pinn-N32-g1.json")
    assert loaded.config.N == 32


def test_the_command_line_starts_pretrained_unless_told_not_to(
    shipped: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setattr(pretrain_module, "PRETRAINED_DIR", shipped)
    source = tmp_path / "scan.npz"
    assert main(["simulate", "--out", str(source), "--N", "32", "--positions", "60"]) == 0
    common = ["train", str(source), "--N", "32", "--gridsize", "1", "--epochs", "1"]
    common += ["--n-groups", "32"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    said = capsys.readouterr()
    # the notice says the start (or, to stderr, that the data look unlike the family)
    assert "pretrained network pinn-N32-g1" in said.out + said.err
    info = json.loads((tmp_path / "a" / "run.json").read_text())
    assert info["details"]["start"] == "pretrained"
    assert main([*common, "--from-scratch", "--out", str(tmp_path / "b")]) == 0
    info = json.loads((tmp_path / "b" / "run.json").read_text())
    assert info["details"]["start"] == "scratch"


def _counted_copy(
    shipped: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, list[Path]]:
    """A copy of the shipped N 32 network in a folder of its own (whose files a test may
    touch, and which the network cache keys apart) as the pretrained folder, and the list
    that every :func:`load_pretrained` call appends its path to."""
    folder = tmp_path / "copy"
    folder.mkdir()
    for source in shipped.glob("pinn-N32-g1.*"):
        (folder / source.name).write_bytes(source.read_bytes())
    monkeypatch.setattr(pretrain_module, "PRETRAINED_DIR", folder)
    reads: list[Path] = []
    real = pretrain_module.load_pretrained

    def counted(path: str | Path) -> object:
        reads.append(Path(path))
        return real(path)

    monkeypatch.setattr(pretrain_module, "load_pretrained", counted)
    return folder, reads


def test_the_network_is_read_once_while_its_files_are_unchanged(
    shipped: Path, data: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, reads = _counted_copy(shipped, tmp_path, monkeypatch)
    recipe_path = folder / f"{network_name(32, 1)}.json"
    kept = pretrain_module._loaded(recipe_path)
    weights_before = [w.copy() for w in kept.training.get_weights()]
    # two runs from the pretrained start (each fine-tunes its own copy): one read in all
    for _ in range(2):
        result = drain(run(recipe(32, 1, 2, **TINY), data))  # type: ignore[arg-type]
        assert result.details["start"] == "pretrained" and result.steps > 0
    assert reads == [recipe_path.resolve()]
    for a, b in zip(weights_before, kept.training.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the kept network was not trained in place
    # the weights file written again (a new modification time): read again
    weights = folder / f"{network_name(32, 1)}.weights.h5"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    pretrained_start(recipe_path, ModelConfig(N=32, gridsize=1), data, data.probe)  # type: ignore[attr-defined]
    assert len(reads) == 2


def test_prefetch_reads_the_network_a_first_image_then_takes(
    shipped: Path, data: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, reads = _counted_copy(shipped, tmp_path, monkeypatch)
    # no network for this N: nothing is read
    assert pretrain_module.prefetch(ModelConfig(N=64, gridsize=3)) is None
    assert reads == []
    found = pretrain_module.prefetch(ModelConfig(N=32, gridsize=1))
    assert found == folder / f"{network_name(32, 1)}.json" and len(reads) == 1
    result = drain(run(recipe(32, 1, 0, **TINY), data))  # type: ignore[arg-type]
    assert result.details["start"] == "pretrained" and len(reads) == 1  # taken, not read again
