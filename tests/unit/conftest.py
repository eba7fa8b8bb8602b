"""Hypothesis runs without its per-example deadline: `make test` runs these beside the
integration tests, on a host whose cores they load, and an example that waits its turn for a
core is no failure of the parser it checks (how fast the code is, bench/ says)."""

from hypothesis import settings

settings.register_profile("shared-host", deadline=None)
settings.load_profile("shared-host")
