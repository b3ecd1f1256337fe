"""Write the lab notebooks and their solution notebooks from one definition.

    python notebooks/labs/build_labs.py

Each lab notebook (``notebooks/labs/lab-*.ipynb``) has a statement, a
skeleton cell to fill in (tagged ``exercise``), and a check cell (tagged
``check``) that calls the autograder API. Its solution notebook
(``notebooks/labs/solutions/*-solution.ipynb``) is the same notebook with the
exercise cells replaced by the reference solution, read from
``minialex/labs/solutions/<lab>.py`` so the two cannot drift apart
(``tests/test_labs_notebooks.py`` checks that the committed files match this
script). Outputs are never written.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SOLUTIONS = ROOT / "minialex" / "labs" / "solutions"

IMPORTS = "import numpy as np\n\nimport minialex"

LABS = {}


def lab(stem, module, names, title, statement, skeleton, after=None):
    LABS[stem] = dict(module=module, names=names, title=title, statement=statement,
                      skeleton=skeleton, after=after)


def check_cell(names):
    return ("from minialex.gradcheck.lab import grade\n\n"
            "# the same checks as `python -m minialex.gradcheck --lab your_file.py "
            f"--names {','.join(names)}`\n"
            f"result = grade(globals(), names={names!r})\n"
            "print(result)\n"
            "assert result.passed, \"not yet: read the table and the hints above\"")


CHECK_TEXT = """## Check

The cell below grades your code exactly as the course's autograder
(`python -m minialex.gradcheck --lab your_file.py`) does: every gradient
against centred differences in float64, relative error
`max|a - b| / max(|a| + |b|)` against a threshold of **1e-6** (a correct
implementation scores about 1e-10), and your forward pass against minialex's
own layer on the same inputs and parameters. A failing row comes with a hint
that says where the errors sit and what that usually means."""

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
makes those mistakes almost invisible.""",
    '''class LocalResponseNorm:
    """b_i = a_i / (k + alpha * sum_{j=max(0,i-n/2)}^{min(C-1,i+n/2)} a_j^2)^beta.

    Shapes:  x, out: (N, C, H, W)
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0):
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
        self.params, self.grads, self.cache = {}, {}, None

    def forward(self, x, train=True):
        N, C, H, W = x.shape
        half = self.size // 2
        sq = x * x
        s = np.empty_like(x)                                    # (N, C, H, W)
        for i in range(C):
            lo, hi = max(0, i - half), min(C - 1, i + half)     # inclusive, clipped
            s[:, i] = self.k + self.alpha * sq[:, lo:hi + 1].sum(axis=1)
        out = x * s ** (-self.beta)
        self.cache = (x, s, out)
        return out

    def backward(self, dout):
        """dout: (N, C, H, W) -> dx: (N, C, H, W). Do not modify dout."""
        x, s, out = self.cache
        # TODO: the direct term dout_j * s_j^-beta, and the cross-channel term
        raise NotImplementedError''')

lab("lab-3.4-maxpool-backward", "maxpool", ["maxpool"],
    "Lab: the backward pass of overlapping max-pooling (Sec. 3.4)",
    r"""AlexNet pools with $z \times z = 3 \times 3$ windows placed every $s = 2$
pixels (Sec. 3.4): neighbouring windows **overlap** by one row or column.

**Your task.** Write `backward`: each output gradient goes to the position
of its window's maximum. The forward pass is given.

*Hint.* With $s < z$ one input pixel can be the maximum of up to four
windows, so its gradient is the **sum** of theirs. Assigning
(`dx[idx] = g`) or a fancy-indexed `dx[idx] += g` keeps only one of them;
add window by window on a slice, or use `np.add.at`. The check's inputs
have distinct values, so no window has a tie (a tie is a kink, where the
numerical gradient is meaningless).""",
    '''class MaxPool2D:
    """Max over z x z windows every s pixels.

    Shapes:  x: (N, C, H, W)  ->  out: (N, C, OH, OW),  OH = (H - z) // s + 1
    """

    def __init__(self, kernel_size=3, stride=2):
        self.kernel_size, self.stride = kernel_size, stride
        self.params, self.grads, self.cache = {}, {}, None

    def forward(self, x, train=True):
        N, C, H, W = x.shape
        z, s = self.kernel_size, self.stride
        OH, OW = (H - z) // s + 1, (W - z) // s + 1
        out = np.empty((N, C, OH, OW), dtype=x.dtype)
        for i in range(OH):
            for j in range(OW):
                out[:, :, i, j] = x[:, :, i * s:i * s + z, j * s:j * s + z].max(axis=(2, 3))
        self.cache = x
        return out

    def backward(self, dout):
        """dout: (N, C, OH, OW) -> dx: (N, C, H, W)."""
        x = self.cache
        # TODO: route each dout[:, :, i, j] to the arg-max of its window, adding at overlaps
        raise NotImplementedError''')

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
classic mistake, and the check will name it.""",
    '''from minialex.im2col import im2col_reference as im2col


def col2im(cols, x_shape, KH, KW, stride, padding):
    """Adjoint of im2col.

    Shapes:  cols: (C*KH*KW, N*OH*OW), rows (c, kh, kw), columns (n, oh, ow)
             ->  dx: (N, C, H, W)
    """
    # TODO: scatter-add every column onto its window of a zero padded image, then crop
    raise NotImplementedError


class Conv2D:
    """Grouped 2-D convolution via im2col.

    Shapes:  x: (N, C, H, W) -> out: (N, F, OH, OW); w: (F, C/G, K, K), b: (F,)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1):
        K = kernel_size
        rng = np.random.default_rng(0)
        self.stride, self.padding, self.groups = stride, padding, groups
        self.params = {"w": rng.standard_normal((out_channels, in_channels // groups, K, K)) * 0.01,
                       "b": np.zeros(out_channels)}
        self.grads, self.cache = {}, None

    def forward(self, x, train=True):
        w, b = self.params["w"], self.params["b"]
        N, C, H, W = x.shape
        F, Cg, K, _ = w.shape
        G, s, p = self.groups, self.stride, self.padding
        OH, OW = (H + 2 * p - K) // s + 1, (W + 2 * p - K) // s + 1
        cols = im2col(x, K, K, s, p).reshape(G, Cg * K * K, N * OH * OW)  # (G, Cg*K*K, N*OH*OW)
        w_g = w.reshape(G, F // G, Cg * K * K)                            # (G, F/G, Cg*K*K)
        out = (w_g @ cols).reshape(F, N, OH, OW).transpose(1, 0, 2, 3)    # (N, F, OH, OW)
        self.cache = (x.shape, cols)
        return out + b[None, :, None, None]

    def backward(self, dout):
        """dout: (N, F, OH, OW) -> dx: (N, C, H, W); fills self.grads["w"], self.grads["b"]."""
        x_shape, cols = self.cache
        # TODO: db, dw (per group), then dx = col2im(w_g.T @ dout_g)
        raise NotImplementedError''')

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
includes logits near 1000, where `exp` overflows).""",
    '''def softmax_cross_entropy(x, y):
    """Shapes: x: (N, K) logits, y: (N,) int labels -> loss: scalar, dx: (N, K)."""
    # TODO: a stable log-softmax, the mean loss, and its gradient
    raise NotImplementedError''')

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


def build(stem, solution=False):
    spec = LABS[stem]
    cells = [_markdown(f"# {spec['title']}" + (" (solution)" if solution else "")
                       + "\n\n" + spec["statement"]),
             _code(IMPORTS)]
    if solution:
        doc, code = _split_docstring((SOLUTIONS / f"{spec['module']}.py").read_text())
        cells.append(_markdown("## Solution\n\n" + doc))
        cells.append(_code(code, tags=("exercise",)))
    else:
        cells.append(_markdown("## Your code\n\nFill in the `TODO`s (keep the names and "
                               "signatures: the autograder looks them up)."))
        cells.append(_code(spec["skeleton"], tags=("exercise",)))
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
