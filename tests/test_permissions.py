"""The whole role-by-action matrix, walked through the one permission check every door uses."""

from __future__ import annotations

from typing import Any

import pytest

from broadsheet.accounts.models import Role, User
from broadsheet.accounts.permissions import OPERATOR, Action, can, require
from broadsheet.content.models import PostStatus
from broadsheet.content.services import load_post
from broadsheet.content.staff_queries import staff_post
from broadsheet.content.tags import find_tag, tags_with_counts
from broadsheet.errors import Forbidden
from broadsheet.extensions import db
from tests.conftest import NOW

C, A, E, AD, OW = Role.CONTRIBUTOR, Role.AUTHOR, Role.EDITOR, Role.ADMIN, Role.OWNER

# Who may do each action at all (for post actions: to their own draft).
ALLOWED: dict[Action, set[Role]] = {
    Action.VIEW_ADMIN: {C, A, E, AD, OW},
    Action.CREATE_POST: {C, A, E, AD, OW},
    Action.EDIT_POST: {C, A, E, AD, OW},
    Action.PUBLISH_POST: {A, E, AD, OW},
    Action.EDIT_ANY_POST: {E, AD, OW},
    Action.MANAGE_TAGS: {E, AD, OW},
    Action.MANAGE_SUBSCRIBERS: {AD, OW},
    Action.MANAGE_STAFF: {AD, OW},
    Action.MANAGE_SETTINGS: {AD, OW},
    Action.VIEW_SITE_STATS: {E, AD, OW},
    Action.TRANSFER_OWNERSHIP: {OW},
}

# (action, whose post, its status) -> roles allowed.
ON_POSTS: dict[tuple[Action, str, PostStatus], set[Role]] = {
    (Action.EDIT_POST, "own", PostStatus.DRAFT): {C, A, E, AD, OW},
    (Action.EDIT_POST, "own", PostStatus.SCHEDULED): {A, E, AD, OW},
    (Action.EDIT_POST, "own", PostStatus.PUBLISHED): {A, E, AD, OW},
    (Action.EDIT_POST, "other", PostStatus.DRAFT): {E, AD, OW},
    (Action.EDIT_POST, "other", PostStatus.PUBLISHED): {E, AD, OW},
    (Action.PUBLISH_POST, "own", PostStatus.DRAFT): {A, E, AD, OW},
    (Action.PUBLISH_POST, "own", PostStatus.PUBLISHED): {A, E, AD, OW},
    (Action.PUBLISH_POST, "other", PostStatus.DRAFT): {E, AD, OW},
    (Action.PUBLISH_POST, "other", PostStatus.PUBLISHED): {E, AD, OW},
}


def test_the_table_names_every_action() -> None:
    assert set(ALLOWED) == set(Action)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
def test_each_role_may_do_exactly_what_its_rank_allows(role: Role, action: Action) -> None:
    user = User(id=1, email="x@example.com", name="X", slug="x", role=role)
    assert can(user, action) is (role in ALLOWED[action])
    if role in ALLOWED[action]:
        require(user, action)
    else:
        with pytest.raises(Forbidden, match=action.value):
            require(user, action)


@pytest.mark.parametrize("case", list(ON_POSTS), ids=lambda c: f"{c[0].name}-{c[1]}-{c[2].value}")
def test_post_actions_depend_on_whose_post_it_is_and_its_state(
    make_user: Any, make_post: Any, case: tuple[Action, str, PostStatus]
) -> None:
    action, whose, status = case
    fields: dict[str, Any] = {"status": status}
    if status is PostStatus.SCHEDULED:
        fields["published_at"] = NOW.replace(year=NOW.year + 1)
    someone_else = make_user(Role.AUTHOR)
    for role in Role:
        actor = make_user(role)
        writer = actor if whose == "own" else someone_else
        post = load_post(db.session, make_post(f"{role} {whose}", authors=[writer], **fields).id)
        assert can(actor, action, post) is (role in ON_POSTS[case]), role


def test_signed_out_and_deactivated_people_may_do_nothing(make_user: Any) -> None:
    owner = make_user(Role.OWNER)
    owner.deactivated_at = NOW
    for action in Action:
        assert not can(None, action)
        assert not can(owner, action)


def test_the_command_line_acts_as_the_owner() -> None:
    assert all(can(OPERATOR, action) for action in Action)


def test_staff_reads_decide_for_themselves_who_may_see_what(make_user: Any, make_post: Any) -> None:
    # Doors no longer check before a read: the read service is the one that says no.
    writer, other, editor = make_user(Role.AUTHOR), make_user(Role.AUTHOR), make_user(Role.EDITOR)
    post = make_post("Mine", authors=[writer], status=PostStatus.DRAFT)
    assert staff_post(db.session, post.id, actor=writer).title == "Mine"
    assert staff_post(db.session, post.id, actor=editor).title == "Mine"
    with pytest.raises(Forbidden):
        staff_post(db.session, post.id, actor=other)
    (tag,) = load_post(db.session, make_post("Tagged", tags=["Flask"], authors=[writer]).id).tags
    for read in (
        lambda who: tags_with_counts(db.session, actor=who),
        lambda who: find_tag(db.session, tag.id, actor=who),
    ):
        assert read(editor)
        with pytest.raises(Forbidden):
            read(writer)
