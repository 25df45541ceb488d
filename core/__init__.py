"""The machinery every plugin relies on; plugin authors never need to edit it.

Subpackages, ground floor first (each may import only those below it; ``tests/test_layout.py``
keeps it so): ``errors``, ``files``, ``config`` → ``compute`` → ``contract`` → ``registry`` →
``store`` → ``pipeline`` → ``grid``, ``authoring`` → ``commands``.
"""
from ._moved import install as _install_forwarding

_install_forwarding()
