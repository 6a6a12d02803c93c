"""The one exception type users see.

Anything a user can cause (a bad override, a missing dataset, a foreign checkpoint,
a full disk) is raised as GanError with a message that says what went wrong and
what to do; the CLI prints it as one paragraph and exits non-zero, no traceback.
"""


class GanError(Exception):
    """A user-facing failure: the message is the whole explanation."""

    exit_code = 2
