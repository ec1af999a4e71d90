"""KID check digits: every KID made is valid; a wrong digit, or (MOD11) two swapped neighbours, is caught."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from carecollect_avtalegiro import KidAlgorithm, is_valid_kid, mod10_check_digit, mod11_check_digit

digits = st.text("0123456789", min_size=1, max_size=24)


@given(
    body=digits, algorithm=st.sampled_from(list(KidAlgorithm)), position=st.integers(0), new=st.integers(0, 9)
)
def test_a_single_wrong_digit_is_caught(body: str, algorithm: KidAlgorithm, position: int, new: int) -> None:
    check = mod10_check_digit(body) if algorithm is KidAlgorithm.MOD10 else mod11_check_digit(body)
    assume(check is not None)
    kid = body + str(check)
    assert is_valid_kid(kid, algorithm)
    i = position % len(kid)
    assume(kid[i] != str(new))
    assert not is_valid_kid(kid[:i] + str(new) + kid[i + 1 :], algorithm)


@given(body=st.text("0123456789", min_size=2, max_size=24), position=st.integers(0))
def test_mod11_catches_swapped_neighbours(body: str, position: int) -> None:
    check = mod11_check_digit(body)
    assume(check is not None)
    kid = body + check
    i = position % (len(kid) - 1)
    assume(kid[i] != kid[i + 1])
    swapped = kid[:i] + kid[i + 1] + kid[i] + kid[i + 2 :]
    assert not is_valid_kid(swapped, KidAlgorithm.MOD11)
