"""The fitted age-at-publication prior: its shape follows the lifespan, the corpus coverage is optional, the
shipped file is what the fit script writes, and reprint houses on a title page make its year a later edition's."""
import json

import numpy as np
import pytest

from filters.dating.combine import author_prior, combine_evidence
from filters.dating.authors import AuthorMatch, AuthorRecord
from filters.dating.publication_age import (PARAMS_PATH, coverage, lifespan_location_scale, load_params,
                                            publication_year_density)
from filters.dating.text_evidence import title_page_years

GRID = np.arange(1450, 2031)


def _median(p):
    p = p / p.sum()
    return int(GRID[np.searchsorted(np.cumsum(p), 0.5)])


def _toy_params():
    """Hand-written parameters: age = 20 + 0.4 L, scale 0.2 L, z uniform on [-1, 1), no coverage fall before 2000."""
    return {"lifespan_model": {"loc_a": 20.0, "loc_b": 0.4, "scale_a": 0.0, "scale_b": 0.2,
                               "lifespan_clip": [30.0, 95.0]},
            "z_hist": {"start": -1.0, "width": 1.0, "probs": [0.5, 0.5]},
            "age_hist": {"start": 30.0, "width": 10.0, "probs": [1.0]},
            "death_minus_year_hist": {"start": 0.0, "width": 20.0, "probs": [1.0]},
            "coverage": {"center": 2100.0, "width": 1.0}}


def test_toy_parameters_give_the_hand_computed_window():
    # L = 50: loc 40, scale 10, z in [-1, 1) -> age 30..49 -> years 1830..1849 for birth 1800
    dens = publication_year_density(GRID, 1800, 1850, _toy_params())
    years = GRID[dens > 0]
    assert years.min() == 1830 and years.max() == 1849
    assert np.allclose(dens[dens > 0], dens[dens > 0][0])  # uniform z -> flat inside
    # birth only: age 30..39; death only: death - year in 0..19
    assert list(GRID[publication_year_density(GRID, 1800, None, _toy_params()) > 0][[0, -1]]) == [1830, 1839]
    assert list(GRID[publication_year_density(GRID, None, 1850, _toy_params()) > 0][[0, -1]]) == [1831, 1850]
    assert publication_year_density(GRID, None, None, _toy_params()) is None


def test_lifespan_is_clipped():
    p = _toy_params()
    assert lifespan_location_scale(200, p) == lifespan_location_scale(95, p)
    assert lifespan_location_scale(5, p) == lifespan_location_scale(30, p)


def test_shipped_prior_longer_lives_publish_later_and_wider():
    p = load_params()
    short = publication_year_density(GRID, 1800, 1840, p, use_coverage=False)
    long_ = publication_year_density(GRID, 1800, 1890, p, use_coverage=False)
    assert _median(short) < _median(long_)
    assert lifespan_location_scale(40, p)[1] < lifespan_location_scale(90, p)[1]
    # the median work comes between age 20 and the author's death
    for b, d in ((1800, 1840), (1800, 1890), (1750, 1820)):
        assert b + 20 < _median(publication_year_density(GRID, b, d, p, use_coverage=False)) < d


def test_coverage_pulls_a_twentieth_century_author_earlier_and_can_be_switched_off():
    p = load_params()
    assert coverage(np.array([1850]), p)[0] > 0.9 > coverage(np.array([1960]), p)[0]
    with_cov = author_prior(GRID, 1880, 1960, coverage=True)
    without = author_prior(GRID, 1880, 1960, coverage=False)
    assert _median(with_cov) < _median(without)
    # an author dead by 1880 is hardly touched by it
    assert abs(_median(author_prior(GRID, 1800, 1870, True)) - _median(author_prior(GRID, 1800, 1870, False))) <= 1


def test_prior_never_excludes_a_year():
    prior = author_prior(GRID, 1800, 1850)
    assert prior.min() > 0 and np.isclose(prior.sum(), 1.0)


def test_combine_passes_the_coverage_switch():
    a = AuthorMatch(AuthorRecord("Doe, Jane", 1885, 1970), 100.0, "Doe, Jane")
    assert combine_evidence([], a, prior_coverage=True).year < combine_evidence([], a, prior_coverage=False).year


def test_shipped_file_records_how_it_was_fitted():
    meta = json.loads(PARAMS_PATH.read_text())["fit"]
    assert meta["script"] == "bench/fit_publication_age.py" and meta["excluded_reference_authors"] > 0
    # no per-work years are shipped: only histogram probabilities and a handful of numbers
    assert "years" not in json.dumps(meta) and "work_dates" not in PARAMS_PATH.read_text()


def test_fit_script_leaves_reference_authors_out_and_recovers_a_known_shape(tmp_path):
    fit_mod = pytest.importorskip("bench.fit_publication_age")
    ref = tmp_path / "ref.csv"
    ref.write_text("id,title,author,year,form,source\n99,Book,Jane Refauthor,1850,novel,x\n")
    labels = tmp_path / "labels.jsonl"
    rng = np.random.default_rng(0)
    lines = [json.dumps({"gb_author": "Refauthor, Jane, 1800-1860", "work_dates": {"99": "1850"},
                         "birthDate": {"value": "1800-01-01"}, "deathDate": {"value": "1860-01-01"}})]
    for i in range(300):  # synthetic authors dead before 1900: every work at age 25 + 0.3 L (+- 2)
        b = int(rng.integers(1700, 1820))
        L = int(rng.integers(40, 80))
        works = {str(1000 + 10 * i + k): str(int(b + 25 + 0.3 * L + rng.integers(-2, 3))) for k in range(5)}
        lines.append(json.dumps({"gb_author": f"Author{i}, A., {b}-{b + L}", "work_dates": works,
                                 "birthDate": {"value": f"{b}-01-01"}, "deathDate": {"value": f"{b + L}-01-01"}}))
    labels.write_text("\n".join(lines) + "\n")
    authors, excluded = fit_mod.load_labels(labels, ref)
    assert excluded == ["Refauthor, Jane, 1800-1860"] and len(authors) == 300
    params = fit_mod.fit(authors)
    lm = params["lifespan_model"]
    assert abs(lm["loc_b"] - 0.3) < 0.1 and abs(lm["loc_a"] + lm["loc_b"] * 60 - 43) < 2
    assert _median(publication_year_density(GRID, 1750, 1810, params, use_coverage=False)) in range(1791, 1796)


def test_reprint_house_on_the_title_page_makes_its_year_a_later_edition():
    page = "THE HOUSE OF TOYS\n\nBY\n\nJANE DOE\n\n\nNEW YORK\nGROSSET & DUNLAP\nPUBLISHERS\n\n1915\n\n"
    ev = title_page_years(page)
    assert [(e.kind, e.high, e.detail["likely_exact"]) for e in ev] == [("later_edition", 1915, False)]
    assert ev[0].detail["reprint_publisher"].lower().startswith("grosset")
    plain = page.replace("GROSSET & DUNLAP", "FREDERICK A. STOKES COMPANY")
    assert [(e.kind, e.detail["likely_exact"]) for e in title_page_years(plain)] == [("title_page_year", True)]
