"""``python -m jaxstyle.bench``."""

from jaxstyle.bench.speed import main

raise SystemExit(main())
