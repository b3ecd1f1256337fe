"""The committed full-scale results (docs/results/NAME/), for notebooks to show beside their miniatures.

    from minialex.reproduce.published import show
    show("fig1")      # the headline table of docs/results/fig1/result.md and its figure

Read-only: it trains nothing. In an install without the repository's docs/
folder it says so instead of failing.
"""
from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"


def headline(name, root=RESULTS):
    """The result.md's title, headline table and seeds/runs/machine lines, as markdown; or a note."""
    path = Path(root) / name / "result.md"
    if not path.is_file():
        return (f"*Full scale: no committed result for `{name}` yet "
                f"(`python -m minialex.reproduce {name}` makes it; docs/results.md has the status).*")
    lines = path.read_text().splitlines()
    keep = []
    for line in lines:
        if line.startswith("## "):                          # the per-run table and notes follow
            break
        if line.startswith("!["):                           # the figure is shown separately
            continue
        keep.append(line)
    return "\n".join(keep).strip()


def figure(name, root=RESULTS):
    """Path of the committed figure (docs/results/NAME/NAME.png), or None."""
    path = Path(root) / name / f"{name}.png"
    return path if path.is_file() else None


def show(name, root=RESULTS):
    """Display the headline and the figure in a notebook (IPython), labelled as the full-scale result."""
    from IPython.display import Image, Markdown, display

    display(Markdown(f"**Full scale** (full CIFAR-10, from `docs/results/{name}/`; not this notebook's "
                     f"miniature):\n\n" + headline(name, root)))
    fig = figure(name, root)
    if fig is not None:
        display(Image(filename=str(fig)))
