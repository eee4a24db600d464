"""``python -m effsearch ...`` runs the command line (where no console script is installed)."""

from effsearch.cli import main

main()
