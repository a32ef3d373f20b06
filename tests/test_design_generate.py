"""Graph GA and BRICS recombination (design.compute.generate)."""

from __future__ import annotations

import random

import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem import Descriptors, rdFingerprintGenerator

from design.compute.generate import (Objective, brics_recombine, crossover, crowding_distance, docking_objective,
                             mutate, mw_window, no_alerts, non_dominated_sort, property_objective, run_ga)
from design.compute.properties import structural_alerts

SEEDS = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CCN(CC)CC", "c1ccncc1C(=O)O", "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
         "O=C(O)c1ccccc1O", "CN1CCC[C@H]1c1cccnc1", "Clc1ccccc1", "COc1ccccc1"]
_MORGAN = rdFingerprintGenerator.GetMorganGenerator(radius=2)


def _similarity_to(smiles):
    target = _MORGAN.GetCountFingerprint(Chem.MolFromSmiles(smiles))
    return lambda mol: DataStructs.TanimotoSimilarity(_MORGAN.GetCountFingerprint(mol), target)


def test_operators_give_sanitised_new_molecules():
    rng = random.Random(0)
    parents = [Chem.MolFromSmiles(s) for s in SEEDS]
    children = [mutate(rng.choice(parents), rng) for _ in range(300)]
    children += [crossover(rng.choice(parents), rng.choice(parents), rng) for _ in range(200)]
    made = [c for c in children if c is not None]
    assert len(made) > 350
    for child in made:
        smi = Chem.MolToSmiles(child)
        assert "." not in smi and Chem.MolFromSmiles(smi) is not None
    # The operators must explore, not just copy: many distinct molecules.
    assert len({Chem.MolToSmiles(c) for c in made}) > 200


def test_ga_is_reproducible_improves_and_reports_each_generation():
    objective = Objective("similarity", _similarity_to("CC(=O)Nc1ccc(OCC)cc1C(=O)N"))
    log, progress = [], []
    result = run_ga(SEEDS, [objective], population_size=20, generations=8, random_seed=3,
                    on_generation=log.append, progress=lambda p, m: progress.append((p, m)))
    again = run_ga(SEEDS, [objective], population_size=20, generations=8, random_seed=3)
    other = run_ga(SEEDS, [objective], population_size=20, generations=8, random_seed=4)
    assert [c.smiles for c in result.population] == [c.smiles for c in again.population]
    assert [c.smiles for c in result.population] != [c.smiles for c in other.population]
    assert [h["generation"] for h in log] == list(range(9))
    for h in log:
        assert {"best_score", "median_score", "best", "median", "evaluated", "best_smiles"} <= set(h)
        assert h["best_score"] >= h["median_score"]
    # Elitist selection: the best never gets worse, and it must improve on the seeds.
    bests = [h["best_score"] for h in log]
    assert bests == sorted(bests) and bests[-1] > bests[0]
    assert progress[-1][0] == pytest.approx(100.0)
    smiles = list(result.all_scored)
    assert len(smiles) == len(set(smiles)) == result.evaluated


def test_hard_filters_and_budget():
    filters = [no_alerts("PAINS", "Brenk"), mw_window(100, 300)]
    result = run_ga(SEEDS, [property_objective("qed")], population_size=16, generations=5, random_seed=1,
                    filters=filters, max_evaluations=60)
    assert result.evaluated <= 60
    for cand in result.all_scored.values():
        mol = Chem.MolFromSmiles(cand.smiles)
        assert structural_alerts(mol, ("PAINS", "Brenk")) == []
        assert 100 <= Descriptors.MolWt(mol) <= 300
    assert sum(result.filtered.values()) > 0
    with pytest.raises(ValueError, match="seeds: no seed passed"):
        run_ga(["CCO"], [property_objective("qed")], filters=[mw_window(400, 500)], generations=1)


def test_pareto_front_is_non_dominated():
    objectives = [property_objective("qed"), property_objective("esol_logs"),
                  property_objective("sa_score", direction="min")]
    result = run_ga(SEEDS, objectives, mode="pareto", population_size=24, generations=4, random_seed=2)
    front = result.pareto_front()
    assert front
    for a in front:
        for b in result.population:
            assert not (all(x >= y for x, y in zip(b.utilities, a.utilities))
                        and any(x > y for x, y in zip(b.utilities, a.utilities)))


def test_non_dominated_sort_and_crowding():
    points = [(1, 1), (2, 0), (0, 2), (0, 0), (1, 0)]
    fronts = non_dominated_sort(points)
    assert sorted(fronts[0]) == [0, 1, 2] and sorted(fronts[1]) == [4] and fronts[2] == [3]
    crowd = crowding_distance(points, fronts[0])
    assert crowd[1] == crowd[2] == float("inf") and 0 < crowd[0] < float("inf")


def test_docking_callback_objective_is_minimised():
    calls = []

    def fake_dock(smiles):
        calls.append(smiles)
        return -0.5 * Chem.MolFromSmiles(smiles).GetNumHeavyAtoms()  # bigger "binds" better

    result = run_ga(SEEDS, [docking_objective(fake_dock)], population_size=10, generations=3, random_seed=0,
                    filters=[mw_window(0, 350)])
    assert calls and result.best.values["docking_score"] == min(c.values["docking_score"]
                                                                for c in result.all_scored.values())


def test_brics_recombination_is_reproducible_and_new():
    seeds = ["CC(=O)Nc1ccc(OCCN2CCOCC2)cc1", "O=C(NCc1ccccc1)c1ccc(Cl)cc1", "COc1ccc(CN2CCCC2)cc1"]
    first = brics_recombine(seeds, n=20, random_seed=5)
    assert first == brics_recombine(seeds, n=20, random_seed=5)
    assert first and not set(first) & {Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in seeds}
    assert all(Chem.MolFromSmiles(s) is not None for s in first)


def test_bad_arguments_name_the_field():
    with pytest.raises(ValueError, match="objective: property 'nope'"):
        property_objective("nope")
    with pytest.raises(ValueError, match="seed 2"):
        run_ga(["CCO", "C1CC"], [property_objective("qed")])
    with pytest.raises(ValueError, match="mode"):
        run_ga(SEEDS, [property_objective("qed")], mode="best")


def test_budget_says_where_it_ran_out():
    """The run reports the generation during which max_evaluations ran out,
    so a page can say what the cap cut short (it used to stop silently)."""
    objective = property_objective("qed")
    full = run_ga(SEEDS, [objective], population_size=10, generations=3, random_seed=5)
    assert full.budget_exhausted_in is None and full.generations_run == 3
    assert full.evaluated > 15
    early = run_ga(SEEDS, [objective], population_size=10, generations=3, random_seed=5, max_evaluations=len(SEEDS) + 4)
    assert early.evaluated == len(SEEDS) + 4
    assert early.budget_exhausted_in == 1 and early.generations_run == 1
    assert [h["generation"] for h in early.history] == [0, 1]
    seeds_only = run_ga(SEEDS, [objective], population_size=10, generations=3, random_seed=5, max_evaluations=2)
    assert seeds_only.evaluated == 2 and seeds_only.budget_exhausted_in == 0 and seeds_only.generations_run == 0


def test_ga_reports_progress_after_every_scored_molecule():
    """With docking a molecule takes seconds: the bar must move inside a generation,
    generation 0 (the starting population) included."""
    calls = []
    events = []

    def objective(mol):
        calls.append(1)
        return _similarity_to("CC(=O)Nc1ccc(OCC)cc1C(=O)N")(mol)

    result = run_ga(SEEDS, [Objective("similarity", objective)], population_size=6, generations=2, random_seed=1,
                    on_generation=lambda h: events.append(("generation", h["generation"])),
                    progress=lambda p, m: events.append(("progress", p)))
    first_generation = events.index(("generation", 0))
    assert len(events[:first_generation]) == len({Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in SEEDS})
    percents = [p for kind, p in events if kind == "progress"]
    assert percents == sorted(percents) and percents[-1] == pytest.approx(100.0)
    assert len(percents) >= result.evaluated == len(calls)
    assert 0 < percents[0] < 100 / 3  # the first seed, before generation 0 is done
