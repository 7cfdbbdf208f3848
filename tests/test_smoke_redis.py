import socket

import pytest


async def test_redis_round_trip(redis) -> None:
    await redis.set("k", "v")
    assert await redis.get("k") == b"v"


def test_outside_connections_are_refused() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(Exception, match=r"(?i)socket|host"):
        sock.connect(("169.254.169.254", 80))
    sock.close()
