"""The benchmarks run from a fresh clone: each one's inputs are files in the
repository (not ../shared), each has a --quick mode, and the copied inputs
have their provenance written down. Timings are not tested."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BENCHES = sorted(p.stem for p in BENCH.glob("*.py"))


def load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_bench_is_checked():
    assert BENCHES == ["atomica_throughput", "design_benchmark", "esm_throughput", "platform_benchmark",
                       "training_benchmark"]


@pytest.mark.parametrize("name", BENCHES)
def test_inputs_are_in_the_repository(name):
    module = load(name)
    assert module.INPUTS or name == "platform_benchmark"  # it generates its input
    for path in map(Path, module.INPUTS):
        assert path.is_file(), path
        assert path.resolve().is_relative_to(ROOT), path
    assert '"shared"' not in (BENCH / f"{name}.py").read_text()


@pytest.mark.parametrize("name", BENCHES)
def test_quick_mode_is_offered(name, capsys):
    with pytest.raises(SystemExit) as done:
        load(name).main(["--quick", "--help"])
    assert done.value.code == 0 and "--quick" in capsys.readouterr().out


def test_copied_inputs_have_their_source():
    sources = (BENCH / "data" / "SOURCES.md").read_text()
    for path in (BENCH / "data").iterdir():
        if path.name != "SOURCES.md":
            assert f"`{path.name}`" in sources, path.name


def test_esm_inputs_are_the_records_the_results_were_measured_on():
    esm = load("esm_throughput")
    records = esm.input_records(100)
    # NC_000932's 85 proteins, then the first 100 P62593 mutants (7 distinct).
    assert len(records) == 185
    assert records[0][0].startswith("gi|7525080|") and records[85][0].startswith("0|beta-lactamase_")
    assert len({seq for _, seq in records[85:]}) == 7 and {len(seq) for _, seq in records[85:]} == {286}
    with pytest.raises(SystemExit, match="first 100 records"):
        esm.input_records(101)
