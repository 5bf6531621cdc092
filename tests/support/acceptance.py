"""Where the public acceptance corpora (NIST PKITS, x509-limbo) are: ../shared/acceptance
beside the repository (as on the development machines and in CI), or CERTGATE_ACCEPTANCE_DIR."""

from __future__ import annotations

import os
from pathlib import Path

ACCEPTANCE = Path(
    os.environ.get(
        "CERTGATE_ACCEPTANCE_DIR", Path(__file__).resolve().parents[3] / "shared" / "acceptance"
    )
)
