"""ilf: train language models from free-text human feedback (Imitation Learning from Language Feedback)."""

__version__ = "0.1.0"
