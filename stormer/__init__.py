"""stormer: coordinated social-media storms — one hashtag, one moment, every time zone."""

__version__ = "0.1.0"
