"""Credentials the instances hold, rotated without an outage: two slots used alternately.

A PostgreSQL role has one password, so changing the password of the login running
instances use breaks every new connection until each instance has the new one. Each such
credential therefore has two slots, ``a`` and ``b``; a rotation counter in the stack config
(``database.credentialRotation``, ``backend.apiTokenRotation``) says which is active. Adding
one to it generates a new value for the *inactive* slot only and makes that slot active:
the launch template moves to it and the instance refresh rolls, while the instances still
running keep the previous slot, whose value has not changed. The previous slot's value
stays valid until the next rotation regenerates it.

Slot ``a`` is the credential as it was before slots existed (the login ``swipesavvy_backend``,
the original tokens): at rotation 0 nothing about it changes, so existing stacks see no diff.

Plain Python, no Pulumi.
"""

from __future__ import annotations

SLOTS = (0, 1)  # a, b
SLOT_SUFFIXES = ("", "_b")  # slot a keeps the name the credential had before slots existed


def active_slot(rotation: int) -> int:
    """The slot the instances use at ``rotation``: a at 0, 2, 4 ..., b at 1, 3, 5 ..."""
    return rotation % 2


def previous_slot(rotation: int) -> int:
    return 1 - active_slot(rotation)


def generation(rotation: int, slot: int) -> int | None:
    """The rotation at which ``slot``'s value was last generated; None: never since the first
    deploy (its value is the original one)."""
    last = rotation if active_slot(rotation) == slot else rotation - 1
    return last if last > 0 else None


def keepers(rotation: int, slot: int) -> dict[str, str] | None:
    """The random value's keepers for ``slot``: they change (a new value) only when a rotation
    makes the slot active; None (no keepers, as before slots existed) until the first one."""
    last = generation(rotation, slot)
    return None if last is None else {"rotation": str(last)}


def slot_name(name: str, slot: int) -> str:
    """``swipesavvy_backend`` for slot a, ``swipesavvy_backend_b`` for slot b."""
    return name + SLOT_SUFFIXES[slot]
