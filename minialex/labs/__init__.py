"""Teaching labs: the names a student module must define, and how each is graded.

In a lab a student derives a layer's backward pass by hand, codes it, and runs

    python -m minialex.gradcheck --lab path/to/student_module.py [--names lrn]

The autograder (``minialex.gradcheck.lab``) imports these **agreed names**
from the module and grades each on several cases (``spec.py``: batch size
N = 3, strides, padding, groups, ties): the forward output and every
gradient against minialex's own readable layer on the same float64 inputs,
parameters and upstream gradient (the reference's gradients are themselves
checked by centred differences). A wrong tensor is compared with the
reference's plausible mistakes (``variants.py``: alpha/n, k = 0, windows,
sign flips, transposes, ties, a missing or double 1/N, groups ignored ...)
and the failure names the one it matches and the notebook step
(``spec.STEPS``) where that quantity is derived.

Agreed names (lab in brackets; notebooks in ``notebooks/labs/``):

``LocalResponseNorm`` [lrn], Sec. 3.3
    class; ``LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)``;
    ``forward(x) -> out``, ``backward(dout) -> dx``; x: (N, C, H, W).
    The paper's convention: alpha is NOT divided by n.
``MaxPool2D`` [maxpool], Sec. 3.4
    class; ``MaxPool2D(kernel_size=3, stride=2)``; ``forward(x) -> out``,
    ``backward(dout) -> dx``; x: (N, C, H, W), out: (N, C, OH, OW).
    **Ties**: a window's gradient goes to its FIRST maximum in row-major
    order (what ``np.argmax`` returns), as ``minialex.layers.MaxPool2D``
    does; one case has ReLU-like inputs full of ties.
``col2im`` [conv]
    function; ``col2im(cols, x_shape, KH, KW, stride, padding) -> dx``, the
    adjoint of ``minialex.im2col.im2col`` (same column layout: rows (c, kh, kw),
    columns (n, oh, ow)). Graded as the backward pass of im2col.
``Conv2D`` [conv], Sec. 3.2, 3.5
    class; ``Conv2D(in_channels, out_channels, kernel_size, stride=1,
    padding=0, groups=1)``; ``params`` holds ``w`` (F, C/G, K, K) and ``b``
    (F,), ``grads`` the same keys after ``backward``. The grader overwrites
    ``params`` with its own random values.
``softmax_cross_entropy`` [softmax], Sec. 3.5
    function; ``softmax_cross_entropy(x, y) -> (loss, dx)``: the mean over
    the batch of -log softmax(x)[y], and its gradient. x: (N, K) float,
    y: (N,) int.

    The loss must be a scalar (0-d).

``forward`` may take ``train=True`` or not. Neither pass may modify its
input arrays (``x``, ``dout``, ``cols``): that is a failure of its own.
Reference solutions, written the way a student would, live in
``minialex.labs.solutions`` (for instructors); the lab notebooks are built
from them (``notebooks/labs/build_labs.py``).
"""
from .spec import AGREED_NAMES, LABS, STEPS, cases_for, expand_names  # noqa: F401
