"""The examples in the plugin's docstrings run (the signature one is Vipps MobilePay's own example)."""

from __future__ import annotations

import doctest

import pytest

import carecollect_vipps
from carecollect_vipps import provider, webhooks


@pytest.mark.parametrize("module", [carecollect_vipps, provider, webhooks])
def test_docstring_examples(module: object) -> None:
    failed, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert failed == 0 and tried > 0
