"""Correct Conv2D keeping w and b as attributes, with `params` a property built on each access;
col2im by fancy indexing with np.add.at; backward returns a list-free plain array."""
import numpy as np

from minialex.im2col import im2col_reference


def col2im(cols, x_shape, KH, KW, stride, padding):
    N, C, H, W = x_shape
    OH = (H + 2 * padding - KH) // stride + 1
    OW = (W + 2 * padding - KW) // stride + 1
    ci = np.repeat(np.arange(C), KH * KW)[:, None]
    hi = np.tile(np.repeat(np.arange(KH), KW), C)[:, None] + stride * np.repeat(np.arange(OH), OW)[None, :]
    wi = np.tile(np.arange(KW), C * KH)[:, None] + stride * np.tile(np.arange(OW), OH)[None, :]
    out = np.zeros((N, C, H + 2 * padding, W + 2 * padding))
    np.add.at(out, (slice(None), ci, hi, wi), cols.reshape(C * KH * KW, N, OH * OW).transpose(1, 0, 2))
    return out[:, :, padding:padding + H, padding:padding + W]


class Conv2D:
    def __init__(self, C, F, K, stride=1, padding=0, groups=1):
        self.stride, self.padding, self.groups = stride, padding, groups
        self.w = np.random.default_rng(0).normal(0, 0.01, (F, C // groups, K, K))
        self.b = np.zeros(F)
        self.grads = {}

    @property
    def params(self):
        return {"w": self.w, "b": self.b}

    def forward(self, x, train=True):
        F, Cg, K, _ = self.w.shape
        G, N = self.groups, x.shape[0]
        cols = im2col_reference(x, K, K, self.stride, self.padding)
        OH = (x.shape[2] + 2 * self.padding - K) // self.stride + 1
        OW = cols.shape[1] // (N * OH)
        blocks = np.split(cols, G, axis=0)
        ws = np.split(self.w.reshape(F, -1), G, axis=0)
        out = np.concatenate([wg @ cg for wg, cg in zip(ws, blocks)], axis=0)     # (F, N*OH*OW)
        self.cache = (x.shape, blocks)
        return out.reshape(F, N, OH, OW).transpose(1, 0, 2, 3) + self.b[None, :, None, None]

    def backward(self, dout):
        x_shape, blocks = self.cache
        F, Cg, K, _ = self.w.shape
        G = self.groups
        d = np.split(dout.transpose(1, 0, 2, 3).reshape(F, -1), G, axis=0)
        ws = np.split(self.w.reshape(F, -1), G, axis=0)
        self.grads["w"] = np.concatenate([dg @ cg.T for dg, cg in zip(d, blocks)]).reshape(self.w.shape)
        self.grads["b"] = dout.sum(axis=(0, 2, 3))
        dcols = np.concatenate([wg.T @ dg for wg, dg in zip(ws, d)], axis=0)
        return col2im(dcols, x_shape, K, K, self.stride, self.padding)
