"""Reusable code for the Face Aging course (Encoder + Conditional DCGAN).

The notebooks in ``notebooks/`` teach; this package holds the logic they call.
"""

__version__ = "0.1.0"
