"""docs/ stays in step with the paper and the repository.

- docs/index.md has a row for every section heading of ../shared/paper/PAPER.md
  (the specification); PAPER.md is read when present, and a fixed list of the
  paper's sections is checked in any case;
- every repository path that docs/*.md names in backticks exists;
- every notebook in notebooks/ is named in docs/index.md;
- links between the docs point at existing files and headings.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAPER = ROOT.parent / "shared" / "paper" / "PAPER.md"
INDEX = DOCS / "index.md"

# The sections of the paper that PAPER.md specifies (its "## N Title" headings).
SECTIONS = ["2", "3.1", "3.2", "3.3", "3.4", "3.5", "4.1", "4.2", "5", "6", "6.1", "7"]
PATH_RE = re.compile(r"`((?:minialex|tests|notebooks|docs|benchmarks|scripts)/[^`\s()]*)")


def index_rows():
    """{first cell of each table row: the whole row} of docs/index.md."""
    rows = {}
    for line in INDEX.read_text().splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = line
    return rows


def paper_sections():
    """Section numbers (or titles, for unnumbered ones) of PAPER.md's '## ' headings."""
    out = []
    for line in PAPER.read_text().splitlines():
        m = re.match(r"^## (\d+(?:\.\d+)*)\s", line)
        if m:
            out.append(m.group(1))
        elif line.startswith("## "):
            out.append(line[3:].split("(")[0].strip())
    return out


def test_index_covers_the_papers_sections():
    rows = index_rows()
    missing = [s for s in SECTIONS if s not in rows]
    assert not missing, f"docs/index.md has no row for sections {missing}"


def test_index_covers_every_heading_of_paper_md():
    if not PAPER.exists():
        pytest.skip(f"{PAPER} not found (../shared is absent); the fixed section list is checked above")
    rows = index_rows()
    sections = paper_sections()
    assert len(sections) >= len(SECTIONS), f"PAPER.md headings not recognised: {sections}"
    missing = [s for s in sections if s not in rows]
    assert not missing, f"docs/index.md has no row for PAPER.md sections {missing}"


def test_every_section_row_names_code_notebook_and_test():
    rows = index_rows()
    for s in SECTIONS:
        row = rows[s]
        assert "`minialex/" in row, f"section {s}: no module named"
        assert "`notebooks/" in row, f"section {s}: no notebook named"
        assert "`tests/" in row, f"section {s}: no test named"


@pytest.mark.parametrize("doc", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_named_paths_exist(doc):
    def exists(p):
        return any(ROOT.glob(p)) if "*" in p else (ROOT / p).exists()

    missing = sorted({p.rstrip(".,:;") for p in PATH_RE.findall(doc.read_text())
                      if not exists(p.rstrip(".,:;"))})
    assert not missing, f"{doc.name} names paths that do not exist: {missing}"


def test_every_notebook_is_in_the_index():
    text = INDEX.read_text()
    missing = [p.name for p in sorted((ROOT / "notebooks").glob("*.ipynb"))
               if f"notebooks/{p.name}" not in text]
    assert not missing, f"docs/index.md does not name {missing}"


def _anchors(md):
    """GitHub-style anchors of a markdown file's headings."""
    out = set()
    for line in md.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            title = re.sub(r"[^\w\- ]", "", title)
            out.add(title.replace(" ", "-"))
    return out


@pytest.mark.parametrize("doc", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_links_between_docs_resolve(doc):
    text = doc.read_text()
    bad = []
    for target, anchor in re.findall(r"\]\(([\w\-.]*\.md|)(?:#([\w\-]+))?\)", text):
        if not target and not anchor:
            continue
        path = DOCS / target if target else doc
        if not path.exists():
            bad.append(f"{target} (no such file)")
        elif anchor and anchor not in _anchors(path.read_text()):
            bad.append(f"{target}#{anchor} (no such heading)")
    assert not bad, f"{doc.name}: broken links {bad}"


def test_code_pointers_into_derivations_resolve():
    """Docstrings point at docs/derivations.md#anchor; those headings must exist."""
    anchors = _anchors((DOCS / "derivations.md").read_text())
    bad = []
    for py in (ROOT / "minialex").rglob("*.py"):
        for anchor in re.findall(r"docs/derivations\.md#([\w\-]+)", py.read_text()):
            if anchor not in anchors:
                bad.append(f"{py.relative_to(ROOT)} -> #{anchor}")
    assert not bad, f"pointers to missing headings of docs/derivations.md: {bad}"
