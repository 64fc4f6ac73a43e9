"""digestbot: watch feeds, post new entries to Discord, search everything seen."""

__version__ = "0.2.0"
USER_AGENT = f"digestbot/{__version__} (+https://github.com/digestbot/digestbot)"
