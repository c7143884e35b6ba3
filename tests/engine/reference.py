"""Plain numpy references of the physics ops, for the tests."""

from __future__ import annotations

import numpy as np


def reference_translate(images: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Plain loops: out[y, x] = in[y - dy, x - dx], bilinear, zero outside."""
    imgs = np.asarray(images)
    squeeze = imgs.ndim == 3
    if squeeze:
        imgs = imgs[..., None]
    b, h, w, c = imgs.shape
    offs = np.broadcast_to(np.asarray(offsets, np.float64), (b, 2))
    out = np.zeros_like(imgs)

    def sample(img: np.ndarray, yy: int, xx: int) -> np.ndarray:
        if 0 <= yy < h and 0 <= xx < w:
            return img[yy, xx]
        return np.zeros(c, img.dtype)

    for k in range(b):
        dy, dx = offs[k]
        for y in range(h):
            for x in range(w):
                sy, sx = y - dy, x - dx
                y0, x0 = int(np.floor(sy)), int(np.floor(sx))
                fy, fx = sy - y0, sx - x0
                out[k, y, x] = (
                    (1 - fy) * (1 - fx) * sample(imgs[k], y0, x0)
                    + (1 - fy) * fx * sample(imgs[k], y0, x0 + 1)
                    + fy * (1 - fx) * sample(imgs[k], y0 + 1, x0)
                    + fy * fx * sample(imgs[k], y0 + 1, x0 + 1)
                )
    return out[..., 0] if squeeze else out
