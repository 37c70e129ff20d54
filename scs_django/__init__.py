"""Secure sessions for Django: hashed tokens, idle and absolute timeouts."""

__version__ = "0.1.0.dev0"
