"""The one exception type that reaches the user as a one-line message."""


class PipelineError(Exception):
    """A problem the user can fix (bad data or settings, a missing file): the command line
    prints `error: <message>` and exits with 1, no traceback, so the message says the fix."""
