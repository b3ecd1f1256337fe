"""An LRN whose constructor does not follow the agreed signature."""


class LocalResponseNorm:
    def __init__(self, n, a, b, kk):
        self.params, self.grads = {}, {}
