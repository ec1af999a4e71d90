"""The examples in the plugin's docstrings run."""

from __future__ import annotations

import doctest

import pytest

import carecollect_stripe
from carecollect_stripe import provider, webhooks


@pytest.mark.parametrize("module", [carecollect_stripe, provider, webhooks])
def test_docstring_examples(module: object) -> None:
    failed, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert failed == 0 and tried > 0
