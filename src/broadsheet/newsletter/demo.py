"""Demo subscribers: a list that looks like a real newsletter's, in any size.

Most readers are confirmed; some never confirmed and some left.  About a
quarter of the confirmed ones chose a few tags, the popular tags most often,
so a post with a popular tag goes to most of the list and a niche one to
those who take everything.  Addresses carry the row's id: running it again
adds more readers and never collides with those already there.
"""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta

from broadsheet.bulk import bulk_insert, next_id, reset_sequence
from broadsheet.extensions import DbSession
from broadsheet.newsletter.models import Subscriber, SubscriberStatus, SubscriberTag

FIRST_NAMES = [
    "ada", "bo", "chen", "dara", "eli", "fatima", "gus", "hana", "ivo", "june", "kofi", "lina",
    "mateo", "nia", "omar", "pia", "quinn", "rosa", "sami", "tove", "uma", "vik", "wren", "yuki",
]  # fmt: skip
LAST_NAMES = [
    "adams", "berg", "costa", "diallo", "evans", "fox", "garcia", "hughes", "ito", "jansen",
    "kim", "lopez", "moreau", "nakamura", "osei", "park", "quist", "reyes", "silva", "tan",
]  # fmt: skip
DOMAINS = ["example.com", "example.org", "example.net"]
CHOOSING_TAGS = 0.25  # of confirmed readers, the share who asked for some tags only


def fill_subscribers(
    session: DbSession,
    count: int,
    *,
    tag_ids: list[int],
    now: datetime,
    rng: random.Random,
) -> int:
    """Add ``count`` subscribers, signed up over the last two years; flushes only.

    ``tag_ids`` are the tags readers may choose, the most popular first.
    Returns how many were added.
    """
    first_id = next_id(session, Subscriber.id)
    weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(tag_ids))))
    span = timedelta(days=730)
    readers, choices = [], []
    for subscriber_id in range(first_id, first_id + count):
        joined = now - span * rng.random()
        roll = rng.random()
        if roll < 0.06:
            status, confirmed, left = SubscriberStatus.PENDING, None, None
        elif roll < 0.13:
            status = SubscriberStatus.UNSUBSCRIBED
            confirmed = joined + timedelta(minutes=rng.randint(1, 600))
            left = confirmed + (now - confirmed) * rng.random()
        else:
            status, left = SubscriberStatus.CONFIRMED, None
            confirmed = joined + timedelta(minutes=rng.randint(1, 600))
            if confirmed > now:
                confirmed = now
        name = f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}"
        readers.append(
            {
                "id": subscriber_id,
                "email": f"{name}.{subscriber_id}@{rng.choice(DOMAINS)}",
                "status": status.value,
                "created_at": joined,
                "confirmed_at": confirmed,
                "unsubscribed_at": left,
                "source": "demo",
                "consent": "demo content",
            }
        )
        if weights and status is SubscriberStatus.CONFIRMED and rng.random() < CHOOSING_TAGS:
            chosen = set(rng.choices(tag_ids, cum_weights=weights, k=rng.randint(1, 3)))
            choices += [{"subscriber_id": subscriber_id, "tag_id": t} for t in sorted(chosen)]
    bulk_insert(session, Subscriber.__table__, readers)  # type: ignore[arg-type]
    bulk_insert(session, SubscriberTag.__table__, choices)  # type: ignore[arg-type]
    reset_sequence(session, "subscribers")
    return count
