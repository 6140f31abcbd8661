"""``python -m flowforge`` (also what ``torchrun -m flowforge`` runs)."""
import sys

from .cli import main

sys.exit(main())
