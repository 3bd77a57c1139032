"""The user-facing fixtures, imported the way the testing guide tells users to."""

from voicesync.testing import voicesync_client, voicesync_sim  # noqa: F401
