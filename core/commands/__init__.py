"""The ``bench`` command groups: click only, one module per group, no logic of their own."""
