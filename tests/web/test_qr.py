"""The Operator page's QR codes: read back as a scanner reads them.

The reader here follows the standard from the symbol alone -- format information (BCH,
either copy), mask, the zig-zag module order, de-interleaving, Reed-Solomon syndromes,
the segment -- so an encoder that placed or protected anything wrongly would not read
back. (The encoder was also checked with zbar's scanner for versions 1 to 29.)
"""

from __future__ import annotations

import pytest

from ledger_core.types.crypto import SigningKey
from ledger_core.types.invitation import Invitation
from ledger_core.web.qr import (
    ALPHANUMERIC,
    BLOCKS,
    QrError,
    data_codewords,
    encode,
    function_modules,
    raw_modules,
    svg,
)

FORMAT_MASK = 0x5412
MASKS = (
    lambda x, y: (x + y) % 2 == 0,
    lambda x, y: y % 2 == 0,
    lambda x, y: x % 3 == 0,
    lambda x, y: (x + y) % 3 == 0,
    lambda x, y: (x // 3 + y // 2) % 2 == 0,
    lambda x, y: x * y % 2 + x * y % 3 == 0,
    lambda x, y: (x * y % 2 + x * y % 3) % 2 == 0,
    lambda x, y: ((x + y) % 2 + x * y % 3) % 2 == 0,
)


def _gf_tables() -> tuple[list[int], list[int]]:
    """GF(256) with the QR polynomial x^8 + x^4 + x^3 + x^2 + 1."""
    exp, log = [0] * 512, [0] * 256
    value = 1
    for i in range(255):
        exp[i], log[value] = value, i
        value <<= 1
        if value > 0xFF:
            value ^= 0x11D
    for i in range(255, 512):
        exp[i] = exp[i - 255]
    return exp, log


EXP, LOG = _gf_tables()


def _syndromes_are_zero(block: list[int], degree: int) -> bool:
    for i in range(degree):
        value = 0
        for byte in block:  # Horner at alpha^i
            value = (EXP[LOG[value] + i] if value else 0) ^ byte
        if value:
            return False
    return True


def _format(matrix: list[list[bool]]) -> tuple[int, int]:
    """(level bits, mask) from the copy around the top-left finder."""
    size = len(matrix)
    bits = 0
    positions = [(8, i) for i in range(6)] + [(8, 7), (8, 8), (7, 8)]
    positions += [(14 - i, 8) for i in range(9, 15)]
    for i, (x, y) in enumerate(positions):
        bits |= matrix[y][x] << i
    second = 0
    for i in range(8):
        second |= matrix[8][size - 1 - i] << i
    for i in range(8, 15):
        second |= matrix[size - 15 + i][8] << i
    assert bits == second, "the two copies of the format information agree"
    for data in range(32):  # the one valid codeword at distance 0
        remainder = data << 10
        for shift in range(4, -1, -1):
            if remainder >> (shift + 10) & 1:
                remainder ^= 0x537 << shift
        if (data << 10 | remainder) ^ FORMAT_MASK == bits:
            return data >> 3, data & 7
    raise AssertionError("no valid format information")


def read(matrix: list[list[bool]]) -> str:
    """Decode a level-M, single-segment symbol as a scanner would."""
    size = len(matrix)
    version = (size - 17) // 4
    level, mask = _format(matrix)
    assert level == 0b00, "level M"
    fixed = function_modules(version)
    bits: list[int] = []
    right, upward = size - 1, True
    while right >= 1:
        if right == 6:
            right = 5
        for step in range(size):
            y = size - 1 - step if upward else step
            for x in (right, right - 1):
                if not fixed[y][x]:
                    bits.append(int(matrix[y][x] ^ MASKS[mask](x, y)))
        upward, right = not upward, right - 2
    codewords = [int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits) - 7, 8)]
    total = raw_modules(version) // 8
    data_total = data_codewords(version)
    blocks = BLOCKS[version]
    degree = (total - data_total) // blocks
    short = blocks - total % blocks
    short_data = total // blocks - degree
    lengths = [short_data + (0 if i < short else 1) for i in range(blocks)]
    data_blocks: list[list[int]] = [[] for _ in range(blocks)]
    at = 0
    for i in range(short_data + 1):
        for b in range(blocks):
            if i < lengths[b]:
                data_blocks[b].append(codewords[at])
                at += 1
    ec_blocks: list[list[int]] = [[] for _ in range(blocks)]
    for _i in range(degree):
        for b in range(blocks):
            ec_blocks[b].append(codewords[at])
            at += 1
    for data, ec in zip(data_blocks, ec_blocks, strict=True):
        assert _syndromes_are_zero(data + ec, degree), "Reed-Solomon check"
    stream = "".join(f"{byte:08b}" for block in data_blocks for byte in block)
    mode, stream = stream[:4], stream[4:]
    if mode == "0010":
        width = 9 if version <= 9 else 11 if version <= 26 else 13
        count, stream = int(stream[:width], 2), stream[width:]
        out = []
        while len(out) < count:
            if count - len(out) >= 2:
                value, stream = int(stream[:11], 2), stream[11:]
                out += [ALPHANUMERIC[value // 45], ALPHANUMERIC[value % 45]]
            else:
                out.append(ALPHANUMERIC[int(stream[:6], 2)])
        return "".join(out)
    eci = mode == "0111"
    if eci:
        assert stream[:8] == f"{26:08b}", "UTF-8"
        mode, stream = stream[8:12], stream[12:]
    assert mode == "0100"
    width = 8 if version <= 9 else 16
    count, stream = int(stream[:width], 2), stream[width:]
    raw = bytes(int(stream[i * 8 : i * 8 + 8], 2) for i in range(count))
    return raw.decode("utf-8")


@pytest.mark.parametrize(
    "text",
    [
        "HELLO WORLD",
        "A",
        "casa-12 paga 12.50 MXN",
        "hola, señora López",
        "x" * 500,
        "TV1-" + "ABCDE-" * 60 + "Q",
    ],
)
def test_a_code_reads_back(text: str) -> None:
    matrix = encode(text)
    assert len(matrix) == len(matrix[0])
    assert read(matrix) == text


def test_an_invitation_code_is_a_scannable_symbol() -> None:
    invitation = Invitation(
        chain_id="barrio-1",
        genesis_hash="ab" * 32,
        seeds=("192.168.1.20:26656",),
        name="casa-12",
        role="prosumer",
        manual=False,
        expires=1_800_000_000,
        nonce=b"\x00\x01\x02\x03",
    ).signed(SigningKey.generate())
    matrix = encode(invitation.code)
    assert read(matrix) == invitation.code
    assert (len(matrix) - 17) // 4 <= 11, "alphanumeric mode keeps it small"
    drawing = svg(invitation.code)
    assert drawing.startswith("<svg xmlns=")
    assert drawing.count("h1v1h-1z") == sum(row.count(True) for row in matrix)


def test_too_long_is_an_error() -> None:
    with pytest.raises(QrError, match="do not fit"):
        encode("x" * 3000)
