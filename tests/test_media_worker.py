"""Images are processed by a real worker process, and a stalled one (its worker killed after
it began, its message lost) is picked up again by the sweeper."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from broadsheet.accounts.permissions import OPERATOR
from broadsheet.extensions import db, utcnow
from broadsheet.media import services as media
from broadsheet.media.models import Image, ImageState
from broadsheet.media.storage import FolderStore
from broadsheet.media.tasks import sweep_media
from tests import media_images as pictures
from tests.workers import empty_queue, running_worker, wait_until, web_on_broker

pytestmark = pytest.mark.queue

both_stacks = pytest.mark.parametrize(
    ("database_url", "broker"),
    [
        pytest.param("sqlite", "embedded", id="embedded"),
        pytest.param("postgresql", "rabbitmq", id="rabbitmq"),
    ],
    indirect=["database_url"],
)


@dataclass
class Stack:
    web: Flask
    database_url: str
    broker_url: str
    queue: str
    tmp_path: Path
    media_root: Path

    def worker(self) -> Any:
        return running_worker(
            self.tmp_path / "worker", self.database_url, self.broker_url, self.queue,
            env={"MEDIA_ROOT": str(self.media_root)},
        )  # fmt: skip


@pytest.fixture
def stack(app: Flask, database_url: str, broker: str, tmp_path: Path) -> Iterator[Stack]:
    media_root = tmp_path / "media"
    with web_on_broker(
        app, database_url, broker, tmp_path, "broadsheet_media", MEDIA_ROOT=str(media_root)
    ) as side:
        yield Stack(side.web, database_url, side.broker_url, side.queue, tmp_path, media_root)
    shutil.rmtree(media_root, ignore_errors=True)


def _upload(stack: Stack, data: bytes) -> int:
    image = media.upload_image(
        db.session, data, name="photo.jpg", actor=OPERATOR, now=utcnow(),
        store=FolderStore(stack.media_root), limits=media.Limits.from_config(stack.web.config),
    )  # fmt: skip
    db.session.commit()  # the task goes to the broker now
    return image.id


def _state(image_id: int) -> ImageState | None:
    db.session.expire_all()
    image = db.session.get(Image, image_id)
    db.session.commit()
    return image.state if image else None


@both_stacks
def test_a_worker_makes_the_variants_of_an_upload(stack: Stack) -> None:
    with stack.worker() as worker:
        image_id = _upload(stack, pictures.jpeg_with_gps(2600, 1400))
        assert wait_until(lambda: _state(image_id) is ImageState.READY, timeout=60), worker.output
    image = db.session.get(Image, image_id)
    assert image is not None
    widths = sorted({v.width for v in media.variants_of(db.session, image)})
    assert widths == [480, 960, 1200, 1600, 2400]
    store = FolderStore(stack.media_root)
    assert all(key.startswith("v/") for key in store.keys(""))


@pytest.mark.parametrize(
    ("database_url", "broker"), [("sqlite", "embedded")], indirect=["database_url"]
)
def test_an_upload_whose_worker_died_mid_way_is_picked_up_by_the_sweeper(stack: Stack) -> None:
    # No worker yet: the message waits.  Then, as if a worker had begun and been killed (an
    # attempt counted, minutes ago) and its message lost, the queue is emptied.
    image_id = _upload(stack, pictures.png(900, 600))
    empty_queue(stack.broker_url, stack.queue)
    image = db.session.get(Image, image_id)
    assert image is not None
    image.attempts = 1
    image.updated_at = utcnow() - timedelta(minutes=5)
    db.session.commit()
    with stack.worker() as worker:
        assert sweep_media.run() == 1  # what the beat runs every minute
        assert wait_until(lambda: _state(image_id) is ImageState.READY, timeout=60), worker.output
    image = db.session.get(Image, image_id)
    assert image is not None
    assert image.attempts == 2
