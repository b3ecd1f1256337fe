"""Sequential: a chain of layers with named parameters."""
from __future__ import annotations

from .base import Layer


class Sequential(Layer):
    """Run layers in order; backward runs them in reverse.

    ``Sequential(("conv1", Conv2D(...)), ("relu1", ReLU()))`` or plain layers
    (named "0", "1", ...). Parameters are reported as "conv1.w", "conv1.b", ...

    Shapes:  whatever the first layer takes -> whatever the last returns
    """

    def __init__(self, *layers):
        super().__init__()
        self.names, self.layers = [], []
        for i, item in enumerate(layers):
            name, layer = item if isinstance(item, tuple) else (str(i), item)
            self.names.append(name)
            self.layers.append(layer)

    def forward(self, x, train=True):
        for layer in self.layers:
            x = layer.forward(x, train=train)
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def named_params(self):
        """Yield ("layer.param", array) for every parameter."""
        for name, layer in zip(self.names, self.layers):
            for k, v in layer.params.items():
                yield f"{name}.{k}", v

    def named_grads(self):
        """Yield ("layer.param", gradient) for every parameter."""
        for name, layer in zip(self.names, self.layers):
            for k, v in layer.grads.items():
                yield f"{name}.{k}", v

    @property
    def params(self):
        return dict(self.named_params())

    @params.setter
    def params(self, value):  # Layer.__init__ assigns {}; parameters live in the layers
        pass

    @property
    def grads(self):
        return dict(self.named_grads())

    @grads.setter
    def grads(self, value):
        pass

    def __getitem__(self, key):
        if isinstance(key, str):
            return self.layers[self.names.index(key)]
        return self.layers[key]

    def __len__(self):
        return len(self.layers)

    def __repr__(self):
        inner = "\n".join(f"  ({n}): {l!r}" for n, l in zip(self.names, self.layers))
        return f"Sequential(\n{inner}\n)"
