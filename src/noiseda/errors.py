"""User-facing errors: the CLI prints them as one line and exits non-zero."""


class NoisedaError(Exception):
    """A problem with the user's input (config, files, paths), not a bug."""


class TrainingInterrupted(Exception):
    """Training stopped by SIGINT or SIGTERM after saving a checkpoint. ``what`` says where it
    stopped; ``resume`` is the command that continues the run (commands that train several
    runs, such as sweep, say instead to rerun themselves)."""

    def __init__(self, what: str, resume: str):
        super().__init__(f"{what}. Resume with: {resume}")
        self.what, self.resume = what, resume
