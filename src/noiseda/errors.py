"""User-facing errors: the CLI prints them as one line and exits non-zero."""


class NoisedaError(Exception):
    """A problem with the user's input (config, files, paths), not a bug."""


class TrainingInterrupted(Exception):
    """Training stopped by SIGINT or SIGTERM after saving a checkpoint; the message says how to resume."""
