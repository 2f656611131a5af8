"""One root exception for everything the engine reports to a person.

The CLI turns these into a message and an exit code; the TUI into a notification.
"""


class WorkbenchError(Exception):
    """Something went wrong that a person can understand and act on."""


class InputError(WorkbenchError):
    """A file, row or argument given by the user is not acceptable."""


class GatesFailed(InputError):
    """A version whose last gate report failed is activated only when forced (with a reason)."""


class NotFound(WorkbenchError):
    """A clip, label, model or file that was asked for does not exist."""


class WorkspaceBusy(WorkbenchError):
    """Another process held the workspace database longer than we were willing to wait."""


class Cancelled(WorkbenchError):
    """Long work was stopped on request; what was finished is kept."""
