"""The base of errors that report a problem with the user's input or environment, not a bug:
the command line prints them as one line instead of a traceback."""


class IlfError(Exception):
    """A failure the user can act on; its message names what is wrong and where."""


class ModelLoadError(IlfError):
    """A model that cannot be loaded: a local path that does not exist, or a hub id that cannot be fetched."""
