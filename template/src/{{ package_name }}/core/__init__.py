"""Shared building blocks: settings files, paths, file helpers, errors, commands."""
