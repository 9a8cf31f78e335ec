"""The errors a layer set raises on its own account.

Errors that come *from* a member keep their type: the set raises an exception of the
member's type whose message names the member (``reading member 'seg' (file:///…) of
VolumetricSet[img, seg]: …``), chained ``from`` the member's original exception (see
``lamina_layerset._members``). These classes are for what the set itself refuses.
"""

from __future__ import annotations

from lamina.errors import LaminaError

__all__ = ["MemberKeyError", "MembersDisagreeError", "UnknownMemberError"]


class _MessageKeyError(KeyError):
    """A ``KeyError`` whose ``str`` is its message (``KeyError`` would ``repr`` it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownMemberError(LaminaError, _MessageKeyError):
    """A write named a key that is not a member of the set; nothing was written.

    The message lists the keys given and the members the set has.
    """


class MemberKeyError(_MessageKeyError):
    """A ``KeyError`` raised by one member, re-raised with the member named (the
    member's own exception is its ``__cause__``)."""


class MembersDisagreeError(LaminaError, ValueError):
    """A set-wide property (``dtype``, a chunk size…) was asked of a set whose members
    differ on it; the message lists every member's value.

    Mixing members is normal (uint8 images beside uint64 labels): the set requires its
    members to agree only on what it is asked.
    """
