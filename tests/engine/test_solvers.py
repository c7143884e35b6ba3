"""Iterative solvers: the same forward model as the simulator, adjoints, propagators, rPIE and
LSQML convergence, probe and position refinement, stopping, and the pipeline contract."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ptycho_engine.metrics import compare
from ptycho_engine.pipeline import EpochFinished, PartialImage, recipe, run
from ptycho_engine.simulate import make_probe, simulate_dataset
from ptycho_engine.solvers.config import SolverConfig
from ptycho_engine.solvers.forward import FarField, NearField, Scan, add_back, extract
from ptycho_engine.solvers.state import SolverState
from ptycho_engine.solvers.updates import lsqml_iteration, rpie_iteration
from ptycho_engine.stitching import reference_region
from ptycho_engine.streams import drain


@pytest.fixture(scope="module")
def sim() -> object:
    return simulate_dataset(N=32, n_positions=200, photons=1e6, seed=2)


def _score(image: object, data: object) -> object:
    ref = reference_region(data.object_gt, image.origin_px, image.object.shape)  # type: ignore[attr-defined]
    return compare(image.object, ref, image.valid)  # type: ignore[attr-defined]


def test_the_forward_model_is_the_simulators(sim: object) -> None:
    # noise-free: the solver's model of the true object and probe gives the simulator's data
    data = sim.replace(amplitudes=sim.amplitudes)  # type: ignore[attr-defined]
    from ptycho_engine.simulate import _noise_free_intensity

    truth = data.object_gt
    positions = data.positions_px
    expected = np.sqrt(_noise_free_intensity(truth, data.probe, positions))
    scan = Scan.around(positions, 32)
    canvas = reference_region(truth, scan.origin_px, scan.shape)
    corners, fractions = scan.corners(positions)
    patches = extract(canvas.astype(np.complex64), corners, fractions, 32)
    waves = FarField(32).forward(data.probe[np.newaxis] * patches)
    model = np.fft.fftshift(np.abs(waves), axes=(-2, -1))
    np.testing.assert_allclose(model, expected, rtol=2e-3, atol=2e-3 * expected.max())


def test_add_back_is_the_adjoint_of_extract() -> None:
    rng = np.random.default_rng(0)
    positions = rng.random((40, 2)) * 50 + 20
    scan = Scan.around(positions, 16)
    corners, fractions = scan.corners(positions)
    canvas = (rng.standard_normal(scan.shape) + 1j * rng.standard_normal(scan.shape)).astype(
        np.complex64
    )
    values = (rng.standard_normal((40, 16, 16)) + 1j * rng.standard_normal((40, 16, 16))).astype(
        np.complex64
    )
    left = np.vdot(values, extract(canvas, corners, fractions, 16))
    back = np.zeros_like(canvas)
    add_back(back, values, corners, fractions)
    right = np.vdot(back, canvas)
    assert left == pytest.approx(right, rel=1e-4)


def test_near_field_propagation_is_unitary_and_invertible() -> None:
    rng = np.random.default_rng(1)
    prop = NearField(64, wavelength_m=1e-10, distance_m=3.6e-3, pixel_m=1.8e-7)
    psi = (rng.standard_normal((2, 64, 64)) + 1j * rng.standard_normal((2, 64, 64))).astype(
        np.complex64
    )
    out = prop.forward(psi)
    assert np.sum(np.abs(out) ** 2) == pytest.approx(np.sum(np.abs(psi) ** 2), rel=1e-4)
    np.testing.assert_allclose(prop.backward(out), psi, atol=1e-4)
    # a real propagation: the wave changes
    assert np.max(np.abs(out - psi)) > 0.1


@pytest.mark.parametrize(
    ("iterate", "config"),
    [
        (rpie_iteration, SolverConfig()),
        (lsqml_iteration, SolverConfig()),
        (lsqml_iteration, SolverConfig(noise_model="poisson")),
    ],
    ids=["rpie", "lsqml-gaussian", "lsqml-poisson"],
)
def test_solvers_recover_the_object(sim: object, iterate: object, config: SolverConfig) -> None:
    state = SolverState.start(sim, sim.probe_all_modes, config)  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    errors = [
        iterate(state, config, k, rng, threading.Event())[0]  # type: ignore[operator]
        for k in range(1, 16)
    ]
    assert errors[-1] < 0.2 * errors[0]
    report = _score(state.image(), sim)
    assert report.amplitude.ssim > 0.9 and report.phase.ssim > 0.9, report
    assert max(abs(s) for s in report.shift_px) < 0.5  # same positions, same convention


def test_probe_refinement_from_a_wrong_gaussian(sim: object) -> None:
    from ptycho_engine.metrics import probe_correlation

    wrong = make_probe("gaussian", 32)  # not the disk probe of the simulation
    truth = sim.probe  # type: ignore[attr-defined]
    for iterate in (rpie_iteration, lsqml_iteration):
        config = SolverConfig()  # the probe is refined from iteration 5: the object forms first
        state = SolverState.start(sim, wrong[np.newaxis], config)  # type: ignore[arg-type]
        before = probe_correlation(state.probe[0], truth)
        rng = np.random.default_rng(0)
        for k in range(1, 41):
            iterate(state, config, k, rng, threading.Event())
        after = probe_correlation(state.probe[0], truth)
        assert before < 0.8 and after > 0.95, (iterate, before, after)
        report = _score(state.image(), sim)
        assert report.amplitude.ssim > 0.9 and report.phase.ssim > 0.9, report


def test_position_correction_reduces_the_position_error(sim: object) -> None:
    rng = np.random.default_rng(5)
    true = sim.positions_px  # type: ignore[attr-defined]
    noise = rng.standard_normal(true.shape)
    noise -= noise.mean(axis=0)
    perturbed = sim.replace(positions_px=true + noise)  # type: ignore[attr-defined]
    config = SolverConfig(refine_positions=True, position_start=3, refine_probe=False)
    state = SolverState.start(perturbed, perturbed.probe_all_modes, config)
    before = np.sqrt(np.mean(np.sum((state.positions_px - true) ** 2, axis=1)))
    for k in range(1, 31):
        lsqml_iteration(state, config, k, rng, threading.Event())
    error = state.positions_px - true
    error -= error.mean(axis=0)  # a global shift is not measurable
    after = np.sqrt(np.mean(np.sum(error**2, axis=1)))
    assert before > 1.2 and after < 0.6 * before, (before, after)


def test_a_solver_run_through_the_pipeline_streams_and_stops(sim: object) -> None:
    spec = recipe(None, reconstructor="rpie", solver={"iterations": 6, "preview_every": 2})
    events: list[object] = []
    result = drain(run(spec, sim), events.append)  # type: ignore[arg-type]
    epochs = [e.snapshot for e in events if isinstance(e, EpochFinished)]
    assert [s.epoch for s in epochs] == [1, 2, 3, 4, 5, 6]
    assert all(s.health is None and s.probe is not None for s in epochs)
    assert [e.epoch for e in events if isinstance(e, PartialImage)] == [2, 4, 6]
    assert epochs[-1].loss < epochs[0].loss
    assert result.scores is not None and result.scores.report.amplitude.ssim > 0.7
    assert result.details["propagation"] == "far-field"
    assert result.history[0]["saturated_fraction"] != result.history[0]["saturated_fraction"]

    stop = threading.Event()

    def on_event(event: object) -> None:
        if isinstance(event, EpochFinished) and event.snapshot.epoch == 2:
            stop.set()

    spec = recipe(None, reconstructor="lsqml", solver={"iterations": 50})
    stopped = drain(run(spec, sim, stop_event=stop), on_event)  # type: ignore[arg-type]
    assert stopped.stopped and stopped.steps == 2
    assert stopped.history[-1]["epoch"] == 2 and stopped.reconstruction is not None


def test_a_solver_starts_without_a_probe(sim: object) -> None:
    bare = sim.replace(probe=None, probe_modes=None)  # type: ignore[attr-defined]
    spec = recipe(None, reconstructor="rpie", solver={"iterations": 3, "preview_every": 0})
    result = drain(run(spec, bare))
    assert result.probe_modes.shape == (1, 32, 32)
    assert np.sum(np.abs(result.probe_modes) ** 2) > 0


PETRA = (
    __import__("pathlib").Path(__file__).resolve().parents[2].parent
    / "shared/datasets/third_party/cdtools/PETRAIII_P25_Near_Field_Ptycho.cxi"
)


def test_measured_near_field_holograms_reconstruct_and_the_network_refers_to_the_solvers() -> None:
    from ptycho_engine.errors import DataError
    from ptycho_engine.pipeline import DataSource

    if not PETRA.is_file():
        pytest.skip(f"third-party data not available: {PETRA}")
    source = DataSource(str(PETRA), propagation="near-field", focus_distance_m=3.65e-3)
    spec = recipe(None, reconstructor="rpie", solver={"iterations": 8, "preview_every": 0})
    result = drain(run(spec, source))
    assert result.details["propagation"] == "near-field"
    assert result.data_info["pixel_size_m"] == pytest.approx(178.66e-9, rel=1e-3)
    errors = [h["loss"] for h in result.history]
    assert errors[-1] < 0.85 * errors[0] and errors[-1] < 0.01  # (the residual of ePIE: 0.0069)
    assert result.reconstruction is not None and result.reconstruction.valid.mean() > 0.2
    with pytest.raises(DataError, match="--algorithm rpie"):
        drain(run(recipe(64, 1, 1), source))
