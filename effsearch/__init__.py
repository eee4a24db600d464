"""effsearch: multi-objective search over model adaptation and compression."""

__version__ = "0.1.0"
