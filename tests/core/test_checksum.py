"""core/checksum.py: six base62 digits of a CRC32, as scanners and client libraries compute them."""

from __future__ import annotations

import zlib

from hypothesis import given
from hypothesis import strategies as st

from tokensmith.core.checksum import BASE62, CHECKSUM_LENGTH, base62_digits, crc32_base62


def by_division(value: int) -> str:
    """The definition: repeated division by 62, least significant digit first."""
    digits = []
    for _ in range(CHECKSUM_LENGTH):
        value, rest = divmod(value, 62)
        digits.append(BASE62[rest])
    return "".join(reversed(digits))


def test_the_edges_of_the_32_bit_range() -> None:
    for value in (0, 1, 61, 62, 62**2 - 1, 62**2, 62**4, 2**31, 2**32 - 1):
        assert base62_digits(value) == by_division(value), value
    assert base62_digits(0) == "000000"
    assert base62_digits(2**32 - 1) == "4gfFC3"


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_every_value_is_spelt_as_by_division(value: int) -> None:
    assert base62_digits(value) == by_division(value)


@given(st.text(alphabet=BASE62 + "_", max_size=64))
def test_a_body_gets_the_digits_of_its_crc32(body: str) -> None:
    assert crc32_base62(body) == by_division(zlib.crc32(body.encode("ascii")))
