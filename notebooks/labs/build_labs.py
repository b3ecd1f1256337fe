"""Write the lab notebooks and their solution notebooks from one definition.

    python notebooks/labs/build_labs.py

Each lab notebook (``notebooks/labs/lab-*.ipynb``) has a statement with
numbered steps, a skeleton cell to fill in (tagged ``exercise``), and a check
cell (tagged ``check``) that calls the autograder API. Its solution notebook
(``notebooks/labs/solutions/*-solution.ipynb``) is the same notebook with the
exercise cells replaced by the reference solution.

Nothing is written twice: the solution code is read from
``minialex/labs/solutions/<lab>.py``; the skeleton is that same file with the
bodies of the functions a student writes (``EXERCISES``) replaced by a TODO;
the steps are ``minialex.labs.spec.STEPS``, the ones the autograder's
diagnoses point at. ``tests/test_labs_notebooks.py`` checks that the
committed files match this script. Outputs are never written.
"""
from __future__ import annotations

import ast
import sys
import textwrap
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SOLUTIONS = ROOT / "minialex" / "labs" / "solutions"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))       # this checkout's minialex, for the steps

from minialex.labs.spec import NOTEBOOKS, STEPS  # noqa: E402

# the functions a student writes, per lab, with the TODO that replaces each body
EXERCISES = {
    "lrn": {"LocalResponseNorm.backward": "the direct term dout_j * s_j^-beta (step 2) and the "
                                          "cross-channel term (step 3) over the right window (step 4)"},
    "maxpool": {"MaxPool2D.backward": "route each dout[:, :, i, j] to the arg-max of its window "
                                      "(step 2), adding at overlaps (step 3)"},
    "conv": {"col2im": "scatter-add every column onto its window of a zero padded image (step 1), "
                       "then crop (step 2)",
             "Conv2D.backward": "db, dw per group (step 3), then dx = col2im(w_g.T @ dout_g) (step 4)"},
    "softmax": {"softmax_cross_entropy": "a stable log-softmax (step 1), the mean loss (step 2), and "
                                         "its gradient (step 3)"},
}

IMPORTS = "import numpy as np\n\nimport minialex"

LABS = {}


def lab(stem, module, names, title, statement):
    assert NOTEBOOKS[module] == stem, (stem, module)
    LABS[stem] = dict(module=module, names=names, title=title, statement=statement)


def check_cell(names):
    return ("from minialex.gradcheck.lab import grade\n\n"
            "# the same checks as `python -m minialex.gradcheck --lab your_file.py "
            f"--names {','.join(names)}`\n"
            f"result = grade(globals(), names={names!r})\n"
            "print(result)\n"
            "assert result.passed, \"not yet: read the table and the hints above\"")


CHECK_TEXT = """## Check

The cell below grades your code exactly as the course's autograder
(`python -m minialex.gradcheck --lab your_file.py`) does: on several cases
(shapes, strides, padding, groups, ties), your forward output and every
gradient against minialex's own layer on the same float64 inputs and
parameters (whose gradients are checked against centred differences),
relative error `max|a - b| / max(|a| + |b|)` against a threshold of
**1e-6** (a correct implementation scores about 1e-15). A failing case says
which tensor is wrong, the most likely mistake, and the step above where
that quantity is derived; modifying an input array in place is a failure too."""

# ---------------------------------------------------------------------------

lab("lab-3.3-lrn-backward", "lrn", ["lrn"],
    "Lab: the backward pass of local response normalisation (Sec. 3.3)",
    r"""AlexNet normalises each ReLU output $a^i_{x,y}$ by the activity of its
neighbouring kernel maps at the same position (Sec. 3.3):

$$b_i = a_i \,/\, s_i^{\beta}, \qquad s_i = k + \alpha \sum_{j=\max(0,\,i-n/2)}^{\min(C-1,\,i+n/2)} a_j^2$$

with $k=2$, $n=5$, $\alpha=10^{-4}$, $\beta=0.75$ (the paper does **not**
divide $\alpha$ by $n$; PyTorch and Caffe do).

**Your task.** Derive $\partial L / \partial a_j$ given $\partial L / \partial b_i$
(`dout`), then write `backward`. The forward pass is given.

*Hint.* $a_j$ appears twice: in its own numerator, and in the denominator
$s_i$ of **every** $i$ whose window contains $j$. Missing the second term
(the cross-channel term) is the classic mistake; so is a window that is off
by one or that does not clip at channels $0$ and $C-1$. The check runs with
$\alpha=1, k=1$ as well as the paper's constants, because $\alpha=10^{-4}$
makes those mistakes almost invisible.""")

lab("lab-3.4-maxpool-backward", "maxpool", ["maxpool"],
    "Lab: the backward pass of overlapping max-pooling (Sec. 3.4)",
    r"""AlexNet pools with $z \times z = 3 \times 3$ windows placed every $s = 2$
pixels (Sec. 3.4): neighbouring windows **overlap** by one row or column.

**Your task.** Write `backward`: each output gradient goes to the position
of its window's maximum. The forward pass is given.

*Hint.* With $s < z$ one input pixel can be the maximum of up to four
windows, so its gradient is the **sum** of theirs. Assigning
(`dx[idx] = g`) or a fancy-indexed `dx[idx] += g` keeps only one of them;
add window by window on a slice, or use `np.add.at`.

*Ties.* After a ReLU, windows are full of equal values (zeros). A tie is a
kink, where the derivative is not defined, so a convention is needed: the
gradient goes to the **first** maximum in row-major order (what `np.argmax`
returns, and what minialex's `MaxPool2D` does). The check includes such
inputs; a mask `window == max` sends the gradient to every tied entry and
fails there.""")

lab("lab-3.2-conv-backward-col2im", "conv", ["conv"],
    "Lab: convolution backward via col2im, with groups (Sec. 3.2, 3.5)",
    r"""minialex computes a convolution as im2col + one matrix product per group:
`cols = im2col(x)` has one column per output position, rows ordered
$(c, k_h, k_w)$ and columns $(n, o_h, o_w)$; with $G$ groups (AlexNet's two
GPUs, Sec. 3.2) `cols` splits into $G$ blocks and kernel $f$ sees only its
group's channels.

**Your task.**
1. Write `col2im(cols, x_shape, KH, KW, stride, padding)`, the adjoint of
   `im2col`: add every column back onto the window it came from (windows
   overlap whenever the stride is smaller than the kernel) and drop the padding.
2. Write `Conv2D.backward`: `db`, `dw` per group, and `dx` as
   `col2im(w_g.T @ dout_g)`. The forward pass is given.

*Hint.* No kernel flip is needed in this form: the textbook "full convolution
with the flipped kernel" *is* `w.T @ dout` followed by col2im. Mixing the two
forms (a flip too many or too few, or the kernel's $h$ and $w$ swapped) is a
classic mistake, and the check will name it.""")

lab("lab-3.5-softmax-cross-entropy", "softmax", ["softmax"],
    "Lab: softmax cross-entropy, loss and gradient (Sec. 3.5)",
    r"""AlexNet ends in a 1000-way softmax trained by multinomial logistic
regression (Sec. 3.5): it maximises the mean log-probability of the correct
label over the batch. As a loss,

$$L = -\frac{1}{N} \sum_n \log \mathrm{softmax}(x_n)_{y_n}.$$

**Your task.** Derive $\partial L / \partial x$ and write
`softmax_cross_entropy(x, y) -> (loss, dx)`.

*Hint.* The result is $(\mathrm{softmax}(x) - \mathrm{onehot}(y)) / N$.
Two classic mistakes: forgetting the $1/N$ of the mean (the check then
finds your gradient exactly $N$ times too large), and computing `exp(x)` of
large logits without subtracting each row's maximum first (the check
includes logits near 1000, where `exp` overflows).""")

# ---------------------------------------------------------------------------


def _split_docstring(source):
    """(module docstring, the rest of the file)."""
    tree = ast.parse(source)
    doc = ast.get_docstring(tree)
    if doc is None:
        return "", source.strip()
    end = tree.body[0].end_lineno
    return doc, "\n".join(source.splitlines()[end:]).strip()


def _code(src, tags=()):
    cell = nbformat.v4.new_code_cell(src)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def _markdown(src):
    return nbformat.v4.new_markdown_cell(src)


def skeleton(source, exercises):
    """The solution's code with each exercise's body replaced by its TODO.

    Keeps the signature, the docstring and a first line that unpacks
    ``self.cache`` (so the student sees what forward kept).
    """
    tree = ast.parse(source)
    lines = source.splitlines()
    found = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            found.update({f"{node.name}.{f.name}": f for f in node.body if isinstance(f, ast.FunctionDef)})
        elif isinstance(node, ast.FunctionDef):
            found[node.name] = node
    missing = set(exercises) - set(found)
    if missing:
        raise ValueError(f"build_labs: the solution defines no {sorted(missing)}")
    for name in sorted(exercises, key=lambda n: -found[n].lineno):   # bottom up: line numbers stay valid
        body = found[name].body
        keep = int(isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant))  # docstring
        if keep < len(body) and isinstance(body[keep], ast.Assign) and "self.cache" in ast.unparse(body[keep]):
            keep += 1                                                    # x, s, out = self.cache
        indent = " " * body[0].col_offset
        start = body[keep].lineno - 1 if keep < len(body) else found[name].end_lineno
        todo = textwrap.wrap(f"TODO: {exercises[name]}", 96 - len(indent),
                             initial_indent=f"{indent}# ", subsequent_indent=f"{indent}#       ")
        lines[start:found[name].end_lineno] = todo + [f"{indent}raise NotImplementedError"]
    return "\n".join(lines)


def statement(spec, solution):
    steps = "\n".join(f"{i}. {t}" for i, t in enumerate(STEPS[spec["module"]], 1))
    return (f"# {spec['title']}" + (" (solution)" if solution else "") + f"\n\n{spec['statement']}\n\n"
            f"### Steps\n\nThe autograder's hints point at these steps.\n\n{steps}")


def build(stem, solution=False):
    spec = LABS[stem]
    cells = [_markdown(statement(spec, solution)), _code(IMPORTS)]
    doc, code = _split_docstring((SOLUTIONS / f"{spec['module']}.py").read_text())
    if solution:
        cells.append(_markdown("## Solution\n\n" + doc))
        cells.append(_code(code, tags=("exercise",)))
    else:
        cells.append(_markdown("## Your code\n\nFill in the `TODO`s (keep the names and "
                               "signatures: the autograder looks them up)."))
        cells.append(_code(skeleton(code, EXERCISES[spec["module"]]), tags=("exercise",)))
    cells.append(_markdown(CHECK_TEXT))
    cells.append(_code(check_cell(spec["names"]), tags=("check",)))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def paths(stem):
    return HERE / f"{stem}.ipynb", HERE / "solutions" / f"{stem}-solution.ipynb"


def _normalise(nb):
    """Deterministic cell ids, so two builds are byte-identical."""
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i}"
    return nb


def main():
    (HERE / "solutions").mkdir(exist_ok=True)
    for stem in LABS:
        for path, sol in zip(paths(stem), (False, True)):
            nbformat.write(_normalise(build(stem, sol)), str(path))
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
