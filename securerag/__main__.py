"""`python -m securerag`: the same as the `securerag` console script."""

from securerag.cli import main

main()
