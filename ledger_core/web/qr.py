"""QR codes (ISO/IEC 18004) for the Operator page: an invitation code a phone can scan.

A small, dependency-free encoder: one segment in alphanumeric mode when the text allows it
(an invitation code does: upper-case letters, digits and ``-``), else byte mode (UTF-8,
announced by an ECI when the text is not ASCII);
error correction level M (about 15 % of the symbol can be damaged); the smallest version
that holds the text; the mask with the lowest penalty. :func:`svg` draws it with a quiet
zone of four modules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

ALPHANUMERIC: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
# Error correction level M: codewords per block and number of blocks, by version (1-40).
EC_PER_BLOCK: Final = (
    0, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26,
    26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28,
)  # fmt: skip
BLOCKS: Final = (
    0, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16,
    17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49,
)  # fmt: skip
_LEVEL_M: Final = 0b00  # the format information's bits for level M

type Matrix = list[list[bool]]


class QrError(ValueError):
    """Text too long for a QR code."""


# -- Reed-Solomon over GF(256), polynomial 0x11d ----------------------------------------------

_EXP: Final = [0] * 512
_LOG: Final = [0] * 256
_value = 1
for _i in range(255):
    _EXP[_i] = _value
    _LOG[_value] = _i
    _value <<= 1
    if _value & 0x100:
        _value ^= 0x11D
for _i in range(255, 512):
    _EXP[_i] = _EXP[_i - 255]


def _multiply(a: int, b: int) -> int:
    return 0 if a == 0 or b == 0 else _EXP[_LOG[a] + _LOG[b]]


def _generator(degree: int) -> list[int]:
    """The generator polynomial's coefficients, highest power first (leading 1 left out)."""
    poly = [1]
    for i in range(degree):
        poly = [
            (poly[j] if j < len(poly) else 0) ^ (_multiply(poly[j - 1], _EXP[i]) if j else 0)
            for j in range(len(poly) + 1)
        ]
    return poly[1:]


def ec_codewords(data: list[int], degree: int) -> list[int]:
    """The error-correction codewords of one block."""
    generator = _generator(degree)
    remainder = [0] * degree
    for byte in data:
        factor = byte ^ remainder[0]
        remainder = [*remainder[1:], 0]
        for i, coefficient in enumerate(generator):
            remainder[i] ^= _multiply(coefficient, factor)
    return remainder


# -- capacity --------------------------------------------------------------------------------


def raw_modules(version: int) -> int:
    """Modules left for data and error correction once every pattern is placed."""
    result = (16 * version + 128) * version + 64
    if version >= 2:
        aligns = version // 7 + 2
        result -= (25 * aligns - 10) * aligns - 55
        if version >= 7:
            result -= 36
    return result


def data_codewords(version: int) -> int:
    """Data codewords of a version at level M."""
    return raw_modules(version) // 8 - EC_PER_BLOCK[version] * BLOCKS[version]


# -- the bit stream ----------------------------------------------------------------------------


class _Bits:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def add(self, value: int, length: int) -> None:
        self.bits.extend((value >> i) & 1 for i in range(length - 1, -1, -1))


def _segment(text: str, version: int) -> _Bits | None:
    """The text's segment for ``version``, or None if it does not fit."""
    bits = _Bits()
    if all(c in ALPHANUMERIC for c in text):
        count_bits = 9 if version <= 9 else 11 if version <= 26 else 13
        bits.add(0b0010, 4)
        bits.add(len(text), count_bits)
        for i in range(0, len(text) - 1, 2):
            bits.add(ALPHANUMERIC.index(text[i]) * 45 + ALPHANUMERIC.index(text[i + 1]), 11)
        if len(text) % 2:
            bits.add(ALPHANUMERIC.index(text[-1]), 6)
    else:
        raw = text.encode("utf-8")
        count_bits = 8 if version <= 9 else 16
        if not text.isascii():
            bits.add(0b0111, 4)  # an ECI: the bytes are UTF-8 (ECI 26)
            bits.add(26, 8)
        bits.add(0b0100, 4)
        bits.add(len(raw), count_bits)
        for byte in raw:
            bits.add(byte, 8)
    if len(bits.bits) > data_codewords(version) * 8:
        return None
    return bits


def _codewords(text: str) -> tuple[int, list[int]]:
    """The smallest version that holds ``text`` and its final codewords (interleaved)."""
    for version in range(1, 41):
        bits = _segment(text, version)
        if bits is not None:
            break
    else:
        raise QrError(f"{len(text)} characters do not fit in a QR code")
    capacity = data_codewords(version) * 8
    bits.add(0, min(4, capacity - len(bits.bits)))
    bits.add(0, -len(bits.bits) % 8)
    data = [int("".join(map(str, bits.bits[i : i + 8])), 2) for i in range(0, len(bits.bits), 8)]
    pad = 0xEC
    while len(data) < capacity // 8:
        data.append(pad)
        pad ^= 0xEC ^ 0x11
    blocks_count = BLOCKS[version]
    degree = EC_PER_BLOCK[version]
    total = raw_modules(version) // 8
    short_blocks = blocks_count - total % blocks_count
    short_length = total // blocks_count - degree
    blocks: list[list[int]] = []
    at = 0
    for i in range(blocks_count):
        length = short_length + (0 if i < short_blocks else 1)
        blocks.append(data[at : at + length])
        at += length
    ecs = [ec_codewords(block, degree) for block in blocks]
    out: list[int] = []
    for i in range(short_length + 1):
        out.extend(block[i] for block in blocks if i < len(block))
    for i in range(degree):
        out.extend(ec[i] for ec in ecs)
    return version, out


# -- the symbol --------------------------------------------------------------------------------


def _alignment_positions(version: int) -> list[int]:
    if version == 1:
        return []
    count = version // 7 + 2
    size = version * 4 + 17
    step = 26 if version == 32 else (version * 4 + count * 2 + 1) // (count * 2 - 2) * 2
    positions = [size - 7 - i * step for i in range(count - 1)]
    return [6, *reversed(positions)]


def _bch(value: int, poly: int, length: int) -> int:
    remainder = value << (poly.bit_length() - 1)
    for shift in range(length - 1, -1, -1):
        if remainder >> (shift + poly.bit_length() - 1) & 1:
            remainder ^= poly << shift
    return remainder


class _Symbol:
    def __init__(self, version: int) -> None:
        self.version = version
        self.size = version * 4 + 17
        self.dark: Matrix = [[False] * self.size for _ in range(self.size)]
        self.fixed: Matrix = [[False] * self.size for _ in range(self.size)]
        self._patterns()

    def set(self, x: int, y: int, dark: bool) -> None:
        self.dark[y][x] = dark
        self.fixed[y][x] = True

    def _patterns(self) -> None:
        size = self.size
        for i in range(size):
            self.set(6, i, i % 2 == 0)
            self.set(i, 6, i % 2 == 0)
        for cx, cy in ((3, 3), (size - 4, 3), (3, size - 4)):
            for dy in range(-4, 5):
                for dx in range(-4, 5):
                    x, y = cx + dx, cy + dy
                    if 0 <= x < size and 0 <= y < size:
                        ring = max(abs(dx), abs(dy))
                        self.set(x, y, ring not in (2, 4))
        positions = _alignment_positions(self.version)
        last = len(positions) - 1
        for i, cx in enumerate(positions):
            for j, cy in enumerate(positions):
                if (i, j) in ((0, 0), (0, last), (last, 0)):
                    continue
                for dy in range(-2, 3):
                    for dx in range(-2, 3):
                        self.set(cx + dx, cy + dy, max(abs(dx), abs(dy)) != 1)
        self.format_bits(0)  # reserve the areas; drawn for real with the chosen mask
        if self.version >= 7:
            bits = self.version << 12 | _bch(self.version, 0x1F25, 6)
            for i in range(18):
                dark = bool(bits >> i & 1)
                a, b = size - 11 + i % 3, i // 3
                self.set(a, b, dark)
                self.set(b, a, dark)

    def format_bits(self, mask: int) -> None:
        data = _LEVEL_M << 3 | mask
        bits = (data << 10 | _bch(data, 0x537, 5)) ^ 0x5412
        size = self.size
        for i in range(6):
            self.set(8, i, bool(bits >> i & 1))
        self.set(8, 7, bool(bits >> 6 & 1))
        self.set(8, 8, bool(bits >> 7 & 1))
        self.set(7, 8, bool(bits >> 8 & 1))
        for i in range(9, 15):
            self.set(14 - i, 8, bool(bits >> i & 1))
        for i in range(8):
            self.set(size - 1 - i, 8, bool(bits >> i & 1))
        for i in range(8, 15):
            self.set(8, size - 15 + i, bool(bits >> i & 1))
        self.set(8, size - 8, dark=True)  # the dark module

    def place(self, codewords: list[int]) -> None:
        bits = [(byte >> (7 - i)) & 1 for byte in codewords for i in range(8)]
        at = 0
        size = self.size
        right = size - 1
        upward = True
        while right >= 1:
            if right == 6:
                right = 5
            for step in range(size):
                y = size - 1 - step if upward else step
                for x in (right, right - 1):
                    if self.fixed[y][x]:
                        continue
                    self.dark[y][x] = at < len(bits) and bits[at] == 1
                    at += 1
            upward = not upward
            right -= 2

    def masked(self, mask: int) -> Matrix:
        test = _MASKS[mask]
        out = [row[:] for row in self.dark]
        for y in range(self.size):
            for x in range(self.size):
                if not self.fixed[y][x] and test(x, y):
                    out[y][x] = not out[y][x]
        return out


_MASKS: Final[tuple[Callable[[int, int], bool], ...]] = (
    lambda x, y: (x + y) % 2 == 0,
    lambda x, y: y % 2 == 0,
    lambda x, y: x % 3 == 0,
    lambda x, y: (x + y) % 3 == 0,
    lambda x, y: (x // 3 + y // 2) % 2 == 0,
    lambda x, y: x * y % 2 + x * y % 3 == 0,
    lambda x, y: (x * y % 2 + x * y % 3) % 2 == 0,
    lambda x, y: ((x + y) % 2 + x * y % 3) % 2 == 0,
)


def penalty(matrix: Matrix) -> int:
    """The standard's penalty: runs, 2x2 blocks, finder-like patterns, dark balance."""
    size = len(matrix)
    score = 0
    lines = [*matrix, *([matrix[y][x] for y in range(size)] for x in range(size))]
    finder = ([True, False, True, True, True, False, True, False, False, False, False],
              [False, False, False, False, True, False, True, True, True, False, True])  # fmt: skip
    for line in lines:
        run = 1
        for i in range(1, size + 1):
            if i < size and line[i] == line[i - 1]:
                run += 1
                continue
            if run >= 5:
                score += 3 + run - 5
            run = 1
        for i in range(size - 10):
            if list(line[i : i + 11]) in finder:
                score += 40
    for y in range(size - 1):
        for x in range(size - 1):
            if matrix[y][x] == matrix[y][x + 1] == matrix[y + 1][x] == matrix[y + 1][x + 1]:
                score += 3
    dark = sum(row.count(True) for row in matrix)
    score += abs(dark * 20 - size * size * 10) // (size * size) * 10
    return score


def function_modules(version: int) -> Matrix:
    """Where the function patterns (finders, timing, alignment, format and version
    information) of a symbol of ``version`` are: True there."""
    return _Symbol(version).fixed


def encode(text: str) -> Matrix:
    """The QR code of ``text`` as rows of modules (True: dark)."""
    version, codewords = _codewords(text)
    symbol = _Symbol(version)
    symbol.place(codewords)
    best: tuple[int, Matrix] | None = None
    for mask in range(8):
        symbol.format_bits(mask)
        candidate = symbol.masked(mask)
        score = penalty(candidate)
        if best is None or score < best[0]:
            best = (score, candidate)
    assert best is not None
    return best[1]


def svg(text: str, module: int = 4, quiet: int = 4) -> str:
    """An SVG drawing of ``text``'s QR code, black on white, ``module`` pixels a module."""
    matrix = encode(text)
    size = len(matrix) + 2 * quiet
    path = "".join(
        f"M{x + quiet},{y + quiet}h1v1h-1z"
        for y, row in enumerate(matrix)
        for x, dark in enumerate(row)
        if dark
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" '
        f'width="{size * module}" height="{size * module}" shape-rendering="crispEdges">'
        f'<rect width="{size}" height="{size}" fill="#fff"/>'
        f'<path d="{path}" fill="#000"/></svg>'
    )
