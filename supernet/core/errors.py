"""The one exception type for errors a user can cause."""


class SupernetError(Exception):
    """A user-caused error (bad arch, missing file, wrong checkpoint, NaN loss...).

    The message is one line that names the problem and the fix. The CLI prints it
    as ``error: <message>`` and exits with status 2, without a traceback.
    """
