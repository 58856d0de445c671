"""The base of errors that report a problem with the user's input or environment, not a bug:
the command line prints them as one line instead of a traceback."""


class IlfError(Exception):
    """A failure the user can act on; its message names what is wrong and where."""
