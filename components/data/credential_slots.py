"""Credentials the instances hold, rotated without an outage: slots used in turn.

A PostgreSQL role has one password, so changing the password of the login running
instances use breaks every new connection until each instance has the new one. Each such
credential therefore has slots; a rotation counter in the stack config
(``database.credentialRotation``, ``backend.apiTokenRotation``) says which is active. Adding
one to it makes the next slot active; a slot's value is generated ``lead`` rotations before
it becomes active, never while a running instance still holds it as its active one.

- Logins: two slots, ``a`` and ``b``, lead 0. A rotation generates the inactive slot's
  password and makes it active: the launch template moves to it and the instance refresh
  rolls, while the instances still running keep the previous slot, whose password has not
  changed (valid until the next rotation regenerates it).
- Bearer tokens: three slots, lead 1. The instances accept the current token, the previous
  one and the next one, generated a rotation ahead: when a rotation makes it current,
  instances of the previous launch template already accept it, so clients may switch at
  once, while the refresh runs.

Slot ``a`` is the credential as it was before slots existed (the login ``swipesavvy_backend``,
the original tokens): at rotation 0 nothing about it changes, so existing stacks see no diff.

Plain Python, no Pulumi.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Slots:
    count: int  # how many slots take turns
    lead: int  # how many rotations before it becomes active a slot's value is generated

    @property
    def all(self) -> range:
        return range(self.count)

    def active(self, rotation: int) -> int:
        """The slot in use at ``rotation``: a at 0, then b, ..."""
        return rotation % self.count

    def previous(self, rotation: int) -> int:
        return (rotation - 1) % self.count

    def next(self, rotation: int) -> int:
        return (rotation + 1) % self.count

    def generation(self, rotation: int, slot: int) -> int | None:
        """The rotation at which ``slot``'s value was last generated; None: never since the
        first deploy (its value is the original one)."""
        last = rotation - (rotation + self.lead - slot) % self.count
        return last if last > 0 else None

    def keepers(self, rotation: int, slot: int) -> dict[str, str] | None:
        """The random value's keepers for ``slot``: they change (a new value) only at the
        rotation that generates it; None (no keepers, as before slots existed) until then."""
        last = self.generation(rotation, slot)
        return None if last is None else {"rotation": str(last)}


LOGIN_SLOTS = Slots(count=2, lead=0)
TOKEN_SLOTS = Slots(count=3, lead=1)
SLOT_SUFFIXES = ("", "_b", "_c")  # slot a keeps the name the credential had before slots existed


def slot_name(name: str, slot: int) -> str:
    """``swipesavvy_backend`` for slot a, ``swipesavvy_backend_b`` for slot b ..."""
    return name + SLOT_SUFFIXES[slot]
