"""The hostile suite's own fixture works: an ordinary mail is acknowledged through the relay sink."""

from __future__ import annotations

import pytest

from mailgate.daemon import Running

from ..sink import Sink
from .conftest import still_flowing

pytestmark = pytest.mark.asyncio


async def test_ordinary_mail_is_acknowledged(hostile: Running, sink: Sink) -> None:
    await still_flowing(hostile, sink)
