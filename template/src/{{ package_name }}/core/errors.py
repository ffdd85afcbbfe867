"""The one exception type that reaches the user as a one-line message."""


class PipelineError(Exception):
    """A problem the user can fix: bad data, bad params, a missing file.

    The command line prints `error: <message>` and exits with code 1, without a
    traceback, so the message must say what is wrong and how to fix it.
    """
