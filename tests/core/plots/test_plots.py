"""The figures of :mod:`aiida_nanoos.plots` from synthetic arrays: labelled axes with units, the points drawn, files
written as PNG and SVG of a sensible size, and images that are not blank."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from aiida_nanoos.plots import (
    calibration_figure,
    convergence_figure,
    pareto_figure,
    parity_figure,
    random_baseline,
    save_figure,
    thermo_figure,
)


def assert_picture(png: Path, min_colours: int = 50) -> np.ndarray:
    """A PNG of a sensible size holding a real picture (many colours, some ink, mostly background); its pixels."""
    assert 20_000 < png.stat().st_size < 1_500_000, png.stat().st_size
    pixels = imread(png)[..., :3]
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    not_white = np.mean(np.any(pixels < 0.95, axis=-1))
    assert len(colours) > min_colours, len(colours)  # lines, markers, text, bands: not a blank canvas
    assert 0.02 < not_white < 0.6, not_white
    return pixels


def assert_svg(svg: Path) -> str:
    assert 20_000 < svg.stat().st_size < 2_000_000, svg.stat().st_size
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text[:2000]
    return text


def written(figure, tmp_path: Path, name: str) -> np.ndarray:
    """Write PNG and SVG, check their sizes and that the PNG is a real picture; returns the PNG pixels."""
    assert_svg(save_figure(figure, tmp_path / f"{name}.svg"))
    return assert_picture(save_figure(figure, tmp_path / f"{name}.png"))


def lines_with(ax, n_points: int) -> list:
    return [line for line in ax.get_lines() if len(line.get_xdata()) == n_points]


def test_random_baseline_is_the_exact_best_of_n_distribution():
    values = np.arange(1.0, 101.0)  # uniform 1..100
    band = random_baseline(values, 10, maximize=True, source="test")
    # best of one draw: the plain quantiles; the median of the best of n is the 0.5^(1/n) quantile
    assert band.median[0] == pytest.approx(np.quantile(values, 0.5))
    assert band.median[9] == pytest.approx(np.quantile(values, 0.5**0.1))
    assert np.all(np.diff(band.median) > 0) and np.all(band.low <= band.median) and np.all(band.median <= band.high)
    minimise = random_baseline(values, 10, maximize=False, source="test")
    assert minimise.median[9] == pytest.approx(np.quantile(values, 1 - 0.5**0.1))
    assert np.all(np.diff(minimise.median) < 0) and np.all(minimise.low <= minimise.high)
    assert random_baseline([1.0], 5, maximize=True, source="test") is None


def test_convergence_figure(tmp_path):
    best = [0.5, 0.8, 0.8, 1.1]
    spent = [4, 8, 12, 16]
    rng = np.random.default_rng(0)
    evaluated = [(i + 1, v) for i, v in enumerate(rng.uniform(0, 1.1, 16))]
    band = random_baseline([v for _, v in evaluated[:4]], 16, maximize=True, source="4 random starts")
    figure = convergence_figure(best, spent, metric="bandgap", units="eV", evaluated=evaluated, baseline=band)
    by_iteration, by_cost = figure.axes
    assert by_iteration.get_xlabel() == "iteration" and by_cost.get_xlabel() == "DFT evaluations"
    assert by_iteration.get_ylabel() == "best bandgap so far (eV)"
    curve = lines_with(by_iteration, 4)[0]
    assert list(curve.get_ydata()) == best and curve.get_ydata()[-1] == 1.1
    assert len(lines_with(by_cost, 16)) == 2  # every evaluation + the random median
    assert len(by_cost.collections) == 1 and len(by_iteration.collections) == 1  # the bands
    assert "random" in " ".join(t.get_text() for t in by_cost.get_legend().get_texts())
    written(figure, tmp_path, "convergence")

    bare = convergence_figure([None, -0.3, -0.1], [2, 4, 6], metric="formation_energy", units="eV/atom")
    assert "no random baseline known" in bare._suptitle.get_text()
    assert not bare.axes[1].collections


def test_pareto_figure(tmp_path):
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 1, (30, 2))
    from aiida_nanoos.design.pareto import pareto_mask

    mask = pareto_mask(points, ["max", "max"])
    figure = pareto_figure(
        points,
        mask,
        names=["bandgap", "stability_score"],
        units=["eV", ""],
        infeasible=[[0.1, 0.1]],
        reference_point=[0.0, 0.0],
        hypervolume=0.7,
    )
    (ax,) = figure.axes
    assert ax.get_xlabel() == "bandgap (eV)" and ax.get_ylabel() == "stability_score"
    front = [line for line in ax.get_lines() if line.get_marker() == "D"][0]
    assert len(front.get_xdata()) == mask.sum() >= 1
    grey = [line for line in ax.get_lines() if line.get_marker() == "o"][0]
    assert len(grey.get_xdata()) == 30 - mask.sum()
    assert "hypervolume 0.7" in ax.get_title()
    written(figure, tmp_path, "pareto")
    with pytest.raises(ValueError, match="two objectives"):
        pareto_figure([[1.0]], [True], names=["bandgap"])


def test_parity_figure(tmp_path):
    rng = np.random.default_rng(2)
    energy = rng.normal(-5.4, 0.01, 12)
    force = rng.normal(0, 1, 300)
    parity = {"energy": (energy, energy + 0.002), "force": (force, force + rng.normal(0, 0.05, 300))}
    figure = parity_figure(parity, subset="2 held-out frames")
    ax_e, ax_f, ax_s = figure.axes
    assert (
        ax_e.get_xlabel() == "DFT energy per atom (eV/atom)" and ax_f.get_ylabel() == "potential force component (eV/Å)"
    )
    assert ax_s.get_xlabel() == "DFT stress component (bar)"
    legend = ax_e.get_legend().get_texts()[0].get_text()
    assert "RMSE 2.00 meV/atom" in legend and "MAE 2.00 meV/atom" in legend and "12 values" in legend
    assert len(lines_with(ax_f, 300)) == 1
    assert "no stress labels" in " ".join(t.get_text() for t in ax_s.texts)
    written(figure, tmp_path, "parity")
    with pytest.raises(ValueError, match="3 DFT values but 2"):
        parity_figure({"energy": ([1, 2, 3], [1, 2])})


def test_thermo_figure(tmp_path):
    time = np.linspace(0, 0.5, 51)
    rng = np.random.default_rng(3)
    temperature = 500 + rng.normal(0, 30, 51)
    potential = -4.3 * 64 + rng.normal(0, 0.05, 51)
    figure = thermo_figure(
        time,
        temperature,
        total_energy=potential + 4.0,
        potential_energy=potential,
        pressure=rng.normal(0, 500, 51),
        n_atoms=64,
        target_temperature=500,
    )
    ax_t, ax_e, ax_u, ax_p = figure.axes
    assert ax_t.get_ylabel() == "temperature (K)" and ax_p.get_ylabel() == "pressure (bar)"
    assert all(ax.get_xlabel() == "time (ps)" for ax in figure.axes)
    assert "meV/atom" in ax_e.get_ylabel()
    assert lines_with(ax_u, 51)[0].get_ydata()[0] == 0.0  # relative to the first value
    assert "64 atoms" in figure._suptitle.get_text()
    written(figure, tmp_path, "thermo")
    partial = thermo_figure(time, temperature)
    assert "no pressure recorded" in " ".join(t.get_text() for t in partial.axes[3].texts)


def test_calibration_figure(tmp_path):
    rng = np.random.default_rng(4)
    sigma = rng.uniform(0.05, 0.3, 200)
    errors = rng.normal(0, sigma)  # honest sigma: the curve follows the diagonal
    figure = calibration_figure(errors, sigma, target="formation_energy", units="eV/atom")
    ax_cal, ax_sig = figure.axes
    assert ax_cal.get_xlabel().startswith("expected coverage") and ax_cal.get_ylabel() == "observed coverage"
    assert (
        ax_sig.get_xlabel() == "|error| of formation_energy (eV/atom)"
        and ax_sig.get_ylabel() == "predicted σ (eV/atom)"
    )
    curve = lines_with(ax_cal, 101)[0]
    assert np.max(np.abs(curve.get_ydata() - curve.get_xdata())) < 0.12
    assert len(lines_with(ax_sig, 200)) == 1
    written(figure, tmp_path, "calibration")

    stored = calibration_figure(summary={"coverage_1sigma": 0.5, "coverage_2sigma": 0.9, "miscalibration_area": 0.1})
    points = stored.axes[0].get_lines()[1]
    assert list(points.get_ydata()) == [0, 0.5, 0.9, 1]
    assert "not stored" in " ".join(t.get_text() for t in stored.axes[1].texts)


def test_save_figure_refuses_other_formats(tmp_path):
    with pytest.raises(ValueError, match=r"\.png, \.svg"):
        save_figure(thermo_figure([0, 1], [300, 310]), tmp_path / "x.jpg")
