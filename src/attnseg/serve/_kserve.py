"""Import kserve without letting it read our command line.

``kserve.model_server`` runs ``argparse.parse_known_args()`` on ``sys.argv`` when imported and
keeps the result as its defaults; ``seg-serve``'s own arguments are none of its business.
``attnseg.serve`` imports this module first, so every submodule may then import kserve.
"""

from __future__ import annotations

import sys

_argv = sys.argv
sys.argv = _argv[:1]
try:
    import kserve
    import kserve.model_server  # noqa: F401 - the import that parses argv
finally:
    sys.argv = _argv
