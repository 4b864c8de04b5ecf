"""Draw the integration's brand images: ``brand/icon.png`` and ``brand/logo.png``.

    .venv/bin/python scripts/brand_images.py

A rounded square in a teal-to-green gradient with a white lightning bolt (the
icon, 256 x 256), and the same mark beside rising bars of a price schedule (the
logo, 512 x 256). Drawn with numpy at 4x and averaged down for smooth edges;
PNG bytes written with zlib. Re-running gives the same bytes.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

type Image = npt.NDArray[np.float64]  # height x width x 4 (RGBA, 0..1)

SCALE = 4
TEAL = np.array([0x0F, 0x76, 0x6E]) / 255
GREEN = np.array([0x22, 0xC5, 0x5E]) / 255
OUT = Path(__file__).resolve().parents[1] / "custom_components" / "transactiva" / "brand"


def _grid(height: int, width: int) -> tuple[Image, Image]:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    return (ys + 0.5) / SCALE, (xs + 0.5) / SCALE


def _rounded_square(ys: Image, xs: Image, *, x0: float, y0: float, size: float, r: float) -> Image:
    cx = np.clip(xs, x0 + r, x0 + size - r)
    cy = np.clip(ys, y0 + r, y0 + size - r)
    inside: Image = ((xs - cx) ** 2 + (ys - cy) ** 2 <= r * r).astype(np.float64)
    return inside


def _polygon(ys: Image, xs: Image, points: list[tuple[float, float]]) -> Image:
    """Even-odd fill of a polygon given in pixel coordinates."""
    inside = np.zeros_like(xs, dtype=bool)
    for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1], strict=True):
        crosses = (y1 > ys) != (y2 > ys)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = x1 + (ys - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (xs < at)
    return inside.astype(np.float64)


def _paint(image: Image, mask: Image, colour: Image) -> None:
    alpha = mask[..., None]
    image[..., :3] = image[..., :3] * (1 - alpha) + colour * alpha
    image[..., 3] = np.maximum(image[..., 3], mask)


def _mark(image: Image, ys: Image, xs: Image, *, x0: float, y0: float, size: float) -> None:
    square = _rounded_square(ys, xs, x0=x0, y0=y0, size=size, r=size * 0.22)
    t = np.clip((ys - y0) / size, 0, 1)[..., None]
    gradient = TEAL * (1 - t) + GREEN * t
    _paint(image, square, gradient)
    bolt = [
        (0.58, 0.12),
        (0.26, 0.56),
        (0.47, 0.56),
        (0.40, 0.88),
        (0.74, 0.42),
        (0.53, 0.42),
    ]
    shape = _polygon(ys, xs, [(x0 + bx * size, y0 + by * size) for bx, by in bolt])
    _paint(image, shape * square, np.ones(3))


def _downsample(image: Image) -> npt.NDArray[np.uint8]:
    height, width = image.shape[0] // SCALE, image.shape[1] // SCALE
    blocks = image.reshape(height, SCALE, width, SCALE, 4)
    alpha = blocks[..., 3].mean(axis=(1, 3))
    colour = (blocks[..., :3] * blocks[..., 3:4]).sum(axis=(1, 3)) / np.maximum(
        blocks[..., 3:4].sum(axis=(1, 3)), 1e-9
    )
    rgba = np.concatenate([colour, alpha[..., None]], axis=-1)
    pixels: npt.NDArray[np.uint8] = np.round(np.clip(rgba, 0, 1) * 255).astype(np.uint8)
    return pixels


def png(pixels: npt.NDArray[np.uint8]) -> bytes:
    """RGBA pixels as PNG bytes."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def icon() -> npt.NDArray[np.uint8]:
    """The 256 x 256 icon."""
    size = 256
    image = np.zeros((size * SCALE, size * SCALE, 4))
    ys, xs = _grid(size * SCALE, size * SCALE)
    _mark(image, ys, xs, x0=8, y0=8, size=240)
    return _downsample(image)


def logo() -> npt.NDArray[np.uint8]:
    """The 512 x 256 logo: the mark and a rising price schedule."""
    height, width = 256, 512
    image = np.zeros((height * SCALE, width * SCALE, 4))
    ys, xs = _grid(height * SCALE, width * SCALE)
    _mark(image, ys, xs, x0=8, y0=8, size=240)
    for n, level in enumerate((0.35, 0.55, 0.45, 0.75, 0.95)):
        left = 280 + n * 45
        top = 232 - level * 200
        bar = _rounded_square(ys, xs, x0=left, y0=top, size=32, r=8)
        bar = np.maximum(bar, ((xs >= left) & (xs <= left + 32) & (ys >= top + 8) & (ys <= 232)))
        t = n / 4
        _paint(image, bar.astype(np.float64), TEAL * (1 - t) + GREEN * t)
    return _downsample(image)


def main() -> None:
    """Write both images."""
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "icon.png").write_bytes(png(icon()))
    (OUT / "logo.png").write_bytes(png(logo()))
    print(f"wrote {OUT / 'icon.png'} and {OUT / 'logo.png'}")


if __name__ == "__main__":
    main()
