"""``python -m carecollect.cli``: the same as the ``carecollect`` command."""

from . import main

if __name__ == "__main__":
    main()
