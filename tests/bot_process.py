"""The bot started the way a user starts it (``python -m bot run --config FILE``, token in the
environment), for end-to-end tests: start, SIGTERM, SIGKILL, and make sure it is gone."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class BotProcess:
    def __init__(self, config: Path, log: Path, *, token: str) -> None:
        self.config = config
        self.log = log
        self.token = token
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {**os.environ, "DISCORD_TOKEN": self.token, "DIGESTBOT_LOG_LEVEL": "INFO",
               "PYTHONPATH": str(ROOT)}  # this checkout, not an install
        env.pop("DIGESTBOT_CONFIG", None)
        with self.log.open("ab") as handle:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", "--config", str(self.config), env=env,
                stdout=handle, stderr=handle, cwd=self.config.parent)

    async def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait for the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def terminate(self, bound: float) -> tuple[int | None, float]:
        """SIGTERM; (exit code, or None if still running after ``bound`` seconds; seconds taken)."""
        started = time.monotonic()
        try:
            code: int | None = await self.stop(bound)
        except TimeoutError:
            code = None
        return code, time.monotonic() - started

    async def kill(self) -> None:
        """SIGKILL: no chance to clean up."""
        assert self.proc is not None
        self.proc.kill()
        await asyncio.wait_for(self.proc.wait(), 15)

    def ensure_dead(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
