"""What the data layer reports, so services decide the policy without knowing SQL."""


class DuplicateError(Exception):
    """A unique constraint refused the write (for example, an email already stored)."""
