"""Who may do what: the one permission check every door goes through.

Roles, least to most: a contributor writes drafts of their own and cannot
publish; an author also publishes (and edits) their own posts; an editor
works on every post and manages tags; an admin also manages subscribers,
staff and the site's settings; the owner can also hand ownership on.

The admin UI, the API and the services all ask ``can`` / ``require``.  The
command line acts as the :data:`OPERATOR`: whoever runs ``broadsheet`` on
the server already holds the database, so it has the owner's rights.
"""

from __future__ import annotations

import enum
from collections.abc import Set
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from broadsheet.accounts.models import Role, User
from broadsheet.errors import Forbidden


class Work(Protocol):
    """What the check reads of a post: who wrote it, and whether it is still a draft.

    A protocol rather than the content model, so that accounts, which content
    builds on, never imports content.
    """

    @property
    def author_ids(self) -> Set[int]: ...

    @property
    def is_draft(self) -> bool: ...


class Action(enum.StrEnum):
    VIEW_ADMIN = "view the admin"
    CREATE_POST = "write a post"
    EDIT_POST = "edit this post"
    PUBLISH_POST = "publish, schedule or unpublish this post"
    EDIT_ANY_POST = "edit other people's posts"
    MANAGE_TAGS = "manage tags"
    MANAGE_SUBSCRIBERS = "manage subscribers"
    MANAGE_STAFF = "manage staff"
    MANAGE_SETTINGS = "change the site's settings"
    TRANSFER_OWNERSHIP = "hand ownership on"
    VIEW_SITE_STATS = "see the whole site's figures"  # below it, one's own posts' figures only


@dataclass(frozen=True)
class Operator:
    """The person at the server's command line; has the owner's rights and writes no posts."""

    role: Role = Role.OWNER
    id: None = None
    name: str = "operator"
    is_active: bool = True


OPERATOR = Operator()
Actor: TypeAlias = User | Operator

# The least role allowed each action; post actions narrow further by ownership below.
LEAST_ROLE: dict[Action, Role] = {
    Action.VIEW_ADMIN: Role.CONTRIBUTOR,
    Action.CREATE_POST: Role.CONTRIBUTOR,
    Action.EDIT_POST: Role.CONTRIBUTOR,
    Action.PUBLISH_POST: Role.AUTHOR,
    Action.EDIT_ANY_POST: Role.EDITOR,
    Action.MANAGE_TAGS: Role.EDITOR,
    Action.MANAGE_SUBSCRIBERS: Role.ADMIN,
    Action.MANAGE_STAFF: Role.ADMIN,
    Action.MANAGE_SETTINGS: Role.ADMIN,
    Action.TRANSFER_OWNERSHIP: Role.OWNER,
    Action.VIEW_SITE_STATS: Role.EDITOR,
}
POST_ACTIONS = frozenset({Action.EDIT_POST, Action.PUBLISH_POST})


def can(actor: Actor | None, action: Action, post: Work | None = None) -> bool:
    """Whether ``actor`` may do ``action`` (to ``post``, for the post actions).

    Without a post, a post action asks about the actor's own posts.  Nobody
    signed out or deactivated may do anything.
    """
    if actor is None or not actor.is_active:
        return False
    if not actor.role.at_least(LEAST_ROLE[action]):
        return False
    if action not in POST_ACTIONS or post is None:
        return True
    if actor.role.at_least(LEAST_ROLE[Action.EDIT_ANY_POST]):
        return True
    if actor.id is None or actor.id not in post.author_ids:
        return False
    # A contributor's post is theirs to change only until someone publishes or schedules it.
    return actor.role.at_least(Role.AUTHOR) or post.is_draft


def require(actor: Actor | None, action: Action, post: Work | None = None) -> None:
    """Raise Forbidden, naming the action, unless ``can(actor, action, post)``."""
    if not can(actor, action, post):
        role = actor.role.value if actor is not None else "someone signed out"
        raise Forbidden(f"A {role} cannot {action.value}.")


def can_give_role(actor: Actor, role: Role, *, current: Role | None = None) -> bool:
    """Whether ``actor`` may make someone a ``role`` (from ``current``, for an existing account).

    Staff managers hand out every role below owner and change anyone but the
    owner; ownership itself only moves by a transfer.
    """
    if not can(actor, Action.MANAGE_STAFF):
        return False
    return role is not Role.OWNER and current is not Role.OWNER
