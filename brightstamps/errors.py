"""The one exception type for bad input, so that rule scripts can report it as one clear line."""

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input data or configuration; the message names the file or field and the problem."""
