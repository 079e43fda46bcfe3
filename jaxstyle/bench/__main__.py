"""``python -m jaxstyle.bench``."""

from jaxstyle.bench.cli import main

raise SystemExit(main())
