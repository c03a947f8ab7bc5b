"""User-facing errors. The CLI prints their message on one line and exits non-zero, without a
traceback: a user's mistake is not a crash. Messages name the problem and the fix, and never
contain images or personal data."""


class LanterneError(Exception):
    """A problem the user can fix (bad input, missing model, bad config)."""


class ConfigError(LanterneError):
    pass


class SourceError(LanterneError):
    """A video source that cannot be opened or decoded."""


class ModelError(LanterneError):
    """A model file that is missing, corrupt or of the wrong checksum."""


class RecordingError(LanterneError):
    """A recorded segment that cannot be written or read as it must be: its key missing or wrong,
    its file tampered with or gone, a key file others can read. Nothing is deleted when it is
    raised: a wrong key must never look like corrupt footage to a purge."""


class JanusError(LanterneError):
    """The live view's Janus gateway that cannot be started, reached or asked: a missing binary,
    a port already taken, a gateway that does not answer, or a request Janus refuses (its reason
    is given, never a secret, pin or token)."""
