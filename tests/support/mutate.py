"""Seeded random damage to mail bytes: the kinds of breakage real mail shows."""

from __future__ import annotations

import random

# Fragments that break MIME and header syntax in the ways senders and relays do.
FRAGMENTS = (
    b"\r\n",
    b"\n",
    b"\r",
    b"\x00",
    b"\xff\xfe",
    b"--",
    b"=?",
    b"?=",
    b"=?utf-8?b?x?=",
    b"=?bogus?q?=ZZ?=",
    b"=?iso-2022-jp?b?GyRC?=",
    b'; boundary="x"',
    b"Content-Type: multipart/mixed; boundary=x\n",
    b"Content-Type: message/rfc822\n\n",
    b"Content-Type: message/delivery-status\n\n",
    b"Content-Type: text/plain; charset=undefined\n",
    b"Content-Transfer-Encoding: base64\n",
    b'Content-Disposition: attachment; filename*0="a"; filename*1*=%E9%ZZ\n',
    b"charset*=utf-8''x",
    b"From: =?utf-8?q?=FF?= <x@y>\n",
    b"Date: Mon, 32 Foo 99999 99:99 +9999\n",
)


def mutations(samples: list[bytes], count: int, seed: int) -> list[bytes]:
    """``count`` damaged copies of ``samples``, the same for the same seed."""
    rng = random.Random(seed)
    damaged = []
    for _ in range(count):
        raw = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 8)):
            # Most damage lands in the first 2 KB, where headers and MIME structure are.
            limit = min(len(raw), 2000) if rng.random() < 0.7 else len(raw)
            position = rng.randrange(limit + 1)
            action = rng.random()
            if action < 0.3 and raw:
                raw[min(position, len(raw) - 1)] = rng.randrange(256)
            elif action < 0.6:
                raw[position:position] = rng.choice(FRAGMENTS)
            elif action < 0.8:
                del raw[position : position + rng.randint(1, 50)]
            else:
                del raw[position:]
        damaged.append(bytes(raw))
    return damaged
