"""jaxstyle: neural style transfer (Gatys et al.) in JAX, with a gallery of every run.

Importing the package has no side effects: JAX's compile cache, logging and seeding are set up
by the entry points (``jaxstyle.cli.main`` and ``dashboard.py``).
"""

__version__ = "0.1.0"
