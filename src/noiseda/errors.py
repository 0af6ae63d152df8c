"""User-facing errors: the CLI prints them as one line and exits non-zero."""


class NoisedaError(Exception):
    """A problem with the user's input (config, files, paths), not a bug."""
