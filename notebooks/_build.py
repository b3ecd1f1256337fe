"""Write the section notebooks (notebooks/*.ipynb) from their sources in notebooks/_src/.

    python notebooks/_build.py            # rebuild every notebook
    python notebooks/_build.py 3.3        # only those whose name starts with "3.3"

Each source is a plain Python file in the "percent" format: a line ``# %%``
starts a code cell, ``# %% [markdown]`` a markdown cell whose lines are
comments (``# `` is stripped). A source also runs as a script
(``cd notebooks && python _src/3.3-local-response-normalization.py``), which
is the quickest way to time or debug it. The notebooks are written without
outputs; ``tests/test_notebooks.py`` executes them.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
SRC = HERE / "_src"


def parse_percent(text):
    """Split a percent-format source into [(kind, source)], kind "code" or "markdown"."""
    cells, kind, lines = [], None, []

    def flush():
        body = "\n".join(lines).strip("\n")
        if kind is not None and body.strip():
            cells.append((kind, body))

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
            continue
        if kind is None:            # the module docstring/header before the first cell is skipped
            continue
        if kind == "markdown":
            line = line[2:] if line.startswith("# ") else line.lstrip("#")
        lines.append(line)
    flush()
    return cells


def build(src):
    """Return the notebook for one source file."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, body in parse_percent(src.read_text()):
        nb.cells.append(new_markdown_cell(body) if kind == "markdown" else new_code_cell(body))
    for i, cell in enumerate(nb.cells):   # stable ids: rebuilding an unchanged source changes nothing
        cell["id"] = f"{src.stem[:40]}-{i}".replace(".", "-")
    return nb


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    sources = sorted(SRC.glob("*.py"))
    if argv:
        sources = [s for s in sources if any(s.stem.startswith(a) for a in argv)]
        if not sources:
            raise SystemExit(f"no source in {SRC} starts with {argv}")
    for src in sources:
        nb = build(src)
        nbformat.validate(nb)
        out = HERE / f"{src.stem}.ipynb"
        nbformat.write(nb, out)
        print(f"wrote {out.relative_to(HERE.parent)} ({len(nb.cells)} cells)")


if __name__ == "__main__":
    main()
