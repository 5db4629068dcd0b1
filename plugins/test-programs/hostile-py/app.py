"""The hostile test program in Python: misbehaves as its ``behaviour`` setting says, so the
sandbox's limits are tested with a real Python component (the Rust one is
plugins/test-programs/hostile): ``loop``, ``alloc`` (1 GiB), ``throw``, ``output`` (an oversized
decision), ``http`` (a request to ``url``), ``env`` and ``file``. Anything else: a well-behaved
skip."""

import os
import urllib.request

import wit_world
from vidhook_sdk import config_or, exported, internal_error, skip


class WitWorld(wit_world.WitWorld):
    @exported
    def plan(self, content, draft):
        behaviour = config_or("behaviour", "ok")
        if behaviour == "loop":
            n = 0
            while True:
                n += 1
        if behaviour == "alloc":
            big = bytearray(1 << 30)
            return skip(f"allocated {len(big)} bytes")
        if behaviour == "throw":
            raise ValueError("hostile plugin raised on purpose")
        if behaviour == "output":
            return skip("x" * (4 << 20))
        if behaviour == "http":
            url = config_or("url", "http://example.com/")
            try:
                with urllib.request.urlopen(url, data=b"{}", timeout=5) as response:
                    return skip(f"http answered {response.status}")
            except Exception as e:
                return skip(f"http: {e!r}")
        if behaviour == "env":
            return skip(f"env: {sorted(os.environ.items())}")
        if behaviour == "file":
            try:
                with open("/etc/passwd") as f:
                    return skip(f"read {len(f.read())} bytes")
            except OSError as e:
                raise internal_error(f"file: {e!r}")
        return skip("behaved")
