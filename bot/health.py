"""``/healthz``: scheduler alive, database reachable, gateway connected (or dry run)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

Check = Callable[[], bool]


@dataclass
class HealthChecks:
    scheduler: Check
    database: Check
    gateway: Check

    def report(self) -> dict[str, bool]:
        out = {}
        for name in ("scheduler", "database", "gateway"):
            try:
                out[name] = bool(getattr(self, name)())
            except Exception:
                out[name] = False
        return out


async def start_health_server(checks: HealthChecks, host: str, port: int) -> web.AppRunner:
    async def healthz(_: web.Request) -> web.Response:
        report = checks.report()
        ok = all(report.values())
        return web.Response(status=200 if ok else 503, content_type="application/json",
                            text=json.dumps({"ok": ok, **report}))

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
