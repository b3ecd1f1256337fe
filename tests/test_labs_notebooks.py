"""The lab notebooks (notebooks/labs/): they execute with the solutions filled in, the bare
skeletons fail their own check cell, and the committed files match build_labs.py."""
import importlib.util
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

sys.path.insert(0, str(Path(__file__).resolve().parent))   # nbrun.py, whatever pytest's import mode
from nbrun import cell_errors, cell_outputs, load_notebook, run_notebook  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LAB_DIR = ROOT / "notebooks" / "labs"

_spec = importlib.util.spec_from_file_location("build_labs", LAB_DIR / "build_labs.py")
build_labs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_labs)
STEMS = list(build_labs.LABS)

pytestmark = pytest.mark.notebook


def _tagged(nb, tag):
    return [i for i, c in enumerate(nb.cells) if tag in c.get("metadata", {}).get("tags", [])]


def test_there_are_four_labs():
    assert len(STEMS) == 4
    for stem in STEMS:
        lab, sol = build_labs.paths(stem)
        assert lab.is_file() and sol.is_file(), stem


@pytest.mark.parametrize("stem", STEMS)
def test_committed_notebooks_match_the_builder_and_have_no_outputs(stem):
    for path, solution in zip(build_labs.paths(stem), (False, True)):
        committed = load_notebook(path)
        built = build_labs.build(stem, solution)
        assert [c.source for c in committed.cells] == [c.source for c in built.cells], \
            f"{path.name} is stale: run python notebooks/labs/build_labs.py"
        for c in committed.cells:
            assert not c.get("outputs") and c.get("execution_count") is None, f"{path.name} has outputs"
        assert _tagged(committed, "exercise") and _tagged(committed, "check")


@pytest.mark.parametrize("stem", STEMS)
def test_solution_notebook_executes_and_passes(stem):
    nb = run_notebook(build_labs.paths(stem)[1], timeout=120)
    out = cell_outputs(nb)
    assert "all checks pass" in out, out
    assert "FAIL" not in out


@pytest.mark.parametrize("stem", STEMS)
def test_lab_notebook_with_solutions_filled_in_passes(stem):
    lab_path, sol_path = build_labs.paths(stem)
    lab, sol = load_notebook(lab_path), load_notebook(sol_path)
    ex_lab, ex_sol = _tagged(lab, "exercise"), _tagged(sol, "exercise")
    assert len(ex_lab) == len(ex_sol) >= 1
    for i, j in zip(ex_lab, ex_sol):
        assert "NotImplementedError" in lab.cells[i].source          # a real skeleton
        lab.cells[i].source = sol.cells[j].source
    nb = run_notebook(lab, timeout=120, cwd=LAB_DIR)
    assert "all checks pass" in cell_outputs(nb)


@pytest.mark.parametrize("stem", STEMS)
def test_bare_skeleton_fails_its_check_cell(stem):
    nb = run_notebook(build_labs.paths(stem)[0], timeout=120, allow_errors=True)
    errors = cell_errors(nb)
    assert errors and errors[0][0] == "AssertionError" and "not yet" in errors[0][1], errors
    out = cell_outputs(nb)
    assert "TODO" in out and "not implemented yet" in out
