"""Publication on CVMFS ``unpacked.cern.ch``: wishlist entries, the round-trip wishlist
editor, and the merge request on the sync repository.

The unpacker (DUCC) reads a ``recipe.yaml`` wishlist in a GitLab repository; images reach
``/cvmfs/unpacked.cern.ch`` only after a maintainer merges an MR that adds their lines. So
lamina derives the lines from what it really published, checks them with the unpacker's own
parsing rules, and proposes the smallest possible change to a file that many people edit.
"""

from __future__ import annotations

from lamina.errors import LaminaError


class EntryError(LaminaError):
    """A wishlist line the unpacker would reject or choke on (exit 2: fix the input)."""

    exit_code = 2


class WishlistError(LaminaError):
    """The sync repository's wishlist cannot be edited safely as text."""

    exit_code = 1


class GitLabError(LaminaError):
    """GitLab refused or failed a request; the message never carries the token."""

    exit_code = 1
