"""Draw the Home Assistant app's icon.png (256x256) and logo.png (500x200).

    .venv/bin/python scripts/app_images.py [OUT_DIR]     # default: addon/

Original art, drawn with numpy and written as PNG with zlib: a house holding a
lightning bolt on a teal-to-green tile (the icon), and the same tile beside
three price bars joined like ledger blocks (the logo). Shapes are polygons and
circles sampled 4x4 per pixel for smooth edges; the output is deterministic,
so re-running it changes nothing unless this file changes.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

type Image = npt.NDArray[np.float64]  # H x W x 4, straight alpha, 0..1
type Mask = npt.NDArray[np.float64]  # H x W coverage, 0..1

SAMPLES = 4
TEAL = (0.043, 0.431, 0.412)
GREEN = (0.165, 0.659, 0.463)
WHITE = (1.0, 1.0, 1.0)
SUN = (1.0, 0.784, 0.239)
INK = (0.082, 0.243, 0.255)


def _grid(width: int, height: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Sample points (x, y) in pixel units, SAMPLES x SAMPLES per pixel."""
    step = 1.0 / SAMPLES
    xs = (np.arange(width * SAMPLES) + 0.5) * step
    ys = (np.arange(height * SAMPLES) + 0.5) * step
    return np.meshgrid(xs, ys)


def _downsample(inside: npt.NDArray[np.bool_], width: int, height: int) -> Mask:
    return inside.reshape(height, SAMPLES, width, SAMPLES).mean(axis=(1, 3))


def polygon(points: list[tuple[float, float]], width: int, height: int) -> Mask:
    """Coverage of a polygon (even-odd rule)."""
    x, y = _grid(width, height)
    inside = np.zeros(x.shape, dtype=bool)
    count = len(points)
    for i in range(count):
        x1, y1 = points[i]
        x2, y2 = points[(i + 1) % count]
        if y1 == y2:
            continue
        crosses = (y1 > y) != (y2 > y)
        at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < at)
    return _downsample(inside, width, height)


def rounded_rect(
    box: tuple[float, float, float, float], radius: float, width: int, height: int
) -> Mask:
    """Coverage of a rectangle (left, top, right, bottom) with rounded corners."""
    left, top, right, bottom = box
    x, y = _grid(width, height)
    cx = np.clip(x, left + radius, right - radius)
    cy = np.clip(y, top + radius, bottom - radius)
    inside = (x - cx) ** 2 + (y - cy) ** 2 <= radius**2
    inside &= (x >= left) & (x <= right) & (y >= top) & (y <= bottom)
    return _downsample(inside, width, height)


def circle(cx: float, cy: float, r: float, width: int, height: int) -> Mask:
    x, y = _grid(width, height)
    return _downsample((x - cx) ** 2 + (y - cy) ** 2 <= r * r, width, height)


def segment(
    a: tuple[float, float], b: tuple[float, float], thickness: float, width: int, height: int
) -> Mask:
    """Coverage of a thick line segment with round ends."""
    x, y = _grid(width, height)
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    t = np.clip(((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    distance = np.hypot(x - (ax + t * dx), y - (ay + t * dy))
    return _downsample(distance <= thickness / 2, width, height)


def paint(image: Image, mask: Mask, colour: tuple[float, float, float] | Image) -> None:
    """Composite ``colour`` (flat, or an H x W x 3 array) over ``image`` through ``mask``."""
    rgb = np.broadcast_to(np.asarray(colour, dtype=np.float64), image[..., :3].shape)
    alpha = mask[..., None]
    below = image[..., 3:4]
    out_alpha = alpha + below * (1 - alpha)
    safe = np.where(out_alpha == 0, 1, out_alpha)
    image[..., :3] = (rgb * alpha + image[..., :3] * below * (1 - alpha)) / safe
    image[..., 3:4] = out_alpha


def gradient(height: int, width: int) -> Image:
    """Teal at the top to green at the bottom."""
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    top = np.asarray(TEAL)[None, None, :]
    bottom = np.asarray(GREEN)[None, None, :]
    return np.broadcast_to(top * (1 - t) + bottom * t, (height, width, 3)).copy()


def draw_mark(image: Image, left: float, top: float, size: float) -> None:
    """The icon's tile with the house and the bolt, ``size`` pixels square at (left, top)."""
    height, width = image.shape[:2]

    def p(u: float, v: float) -> tuple[float, float]:
        return left + u * size, top + v * size

    tile = rounded_rect((*p(0.02, 0.02), *p(0.98, 0.98)), 0.2 * size, width, height)
    paint(image, tile, gradient(height, width))
    house = [p(0.5, 0.17), p(0.83, 0.45), p(0.74, 0.45), p(0.74, 0.82), p(0.26, 0.82)]
    house += [p(0.26, 0.45), p(0.17, 0.45)]
    paint(image, polygon(house, width, height), WHITE)
    bolt = [p(0.55, 0.36), p(0.38, 0.6), p(0.49, 0.6), p(0.44, 0.77), p(0.63, 0.51)]
    bolt += [p(0.52, 0.51), p(0.58, 0.36)]
    paint(image, polygon(bolt, width, height), SUN)
    # Three linked nodes along the roof: the neighbourhood's ledger.
    for a, b in ((p(0.22, 0.3), p(0.5, 0.1)), (p(0.5, 0.1), p(0.78, 0.3))):
        paint(image, segment(a, b, 0.025 * size, width, height), WHITE)
    for u, v in ((0.22, 0.3), (0.5, 0.1), (0.78, 0.3)):
        paint(image, circle(*p(u, v), 0.05 * size, width, height), WHITE)
        paint(image, circle(*p(u, v), 0.028 * size, width, height), SUN)


def icon() -> Image:
    image = np.zeros((256, 256, 4))
    draw_mark(image, 0, 0, 256)
    return image


def logo() -> Image:
    width, height = 500, 200
    image = np.zeros((height, width, 4))
    draw_mark(image, 10, 10, 180)
    # Price bars of a day (night, noon, evening peak) joined like blocks of a chain.
    bars = ((230, 0.45, GREEN), (320, 0.3, TEAL), (410, 0.8, SUN))
    floor = 178.0
    for i, (x, share, colour) in enumerate(bars):
        top = floor - share * 150
        paint(image, rounded_rect((x, top, x + 62, floor), 10, width, height), colour)
        if i:
            link = segment((x - 28 + 2, floor - 20), (x + 2, floor - 20), 8, width, height)
            paint(image, link, INK)
    return image


def png(image: Image) -> bytes:
    """An RGBA PNG of ``image``."""
    height, width = image.shape[:2]
    pixels = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1] / "addon"
    out.mkdir(parents=True, exist_ok=True)
    for name, image in (("icon.png", icon()), ("logo.png", logo())):
        (out / name).write_bytes(png(image))
        print(f"wrote {out / name} ({image.shape[1]}x{image.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
