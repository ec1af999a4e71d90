"""The kit's fixtures, also when carecollect's pytest plugin is not registered (a source checkout)."""

from carecollect.testing.fixtures import smtp_server  # noqa: F401
