"""``python -m jaxstyle``: the command line."""

from jaxstyle.cli import main

raise SystemExit(main())
