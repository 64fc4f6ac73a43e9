"""Command line: ``digestbot run | poll | check | search | reindex | healthcheck | digest | import-opml |
export-opml | sources``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot import __version__
from bot.config import Config, default_config_path, load_config
from bot.errors import DigestError

if TYPE_CHECKING:
    from bot.app import App
    from bot.poll import PollOutcome


def _config(args: argparse.Namespace) -> Config:
    path = Path(args.config) if args.config else default_config_path()
    return load_config(path)


def cmd_check(args: argparse.Namespace) -> int:
    config = _config(args)
    print(f"config {config.file}: OK")
    print(f"database: {config.storage.path}   search index: {config.storage.resolved_index_path}")
    print(f"discord: api {config.discord.api_base}  gateway {config.discord.gateway_url}  "
          f"token {'set' if config.token else 'NOT set (dry runs only)'}")
    print(f"topics: {len(config.topics)}  ({', '.join(list(config.topics)[:12])}"
          f"{', …' if len(config.topics) > 12 else ''})")
    print(f"sources: {len(config.sources)}")
    for source in config.sources:
        state = "" if source.enabled else "  [disabled]"
        channels = ", ".join(str(c) for c in source.channels) or "(no channel: stored and searchable only)"
        print(f"  - {source.id}: {source.name}{state}\n      url {source.url}\n      every "
              f"{source.interval}, backfill {source.backfill}, topics {', '.join(source.topics) or '-'}"
              f"\n      → {channels}")
    routes = config.all_routes()
    print(f"routes: {len(routes)}")
    for route in routes:
        covers = ", ".join(route.sources) if route.sources else "all sources"
        if route.topics:
            covers += f"; topics {', '.join(route.topics)}"
        extras = [name for name, on in (("include filter", route.include), ("exclude filter", route.exclude),
                                         ("template", route.template), ("role mentions", route.mention_roles)) if on]
        print(f"  - {route.describe()}  ({covers}){'  + ' + ', '.join(extras) if extras else ''}")
    return 0


def _with_app(args: argparse.Namespace, job: Callable[[App], Awaitable[int]]) -> int:
    from bot.app import App

    config = _config(args)

    async def go() -> int:
        async with App.open(config) as app:
            return await job(app)

    return asyncio.run(go())


def cmd_digest(args: argparse.Namespace) -> int:
    """Print (``--preview``, the default) or queue (``--now``) a digest route's next digest."""
    from bot.deliver import ConsoleDeliverer, ConsoleWebhooks
    from bot.format import MessageSpec, render_embed_as_text

    async def job(app: App) -> int:
        routes = app.router.digest_routes()
        if args.route:
            routes = [r for r in routes if r.id == args.route]
            if not routes:
                print(f"digestbot: no digest route {args.route!r}; see `digestbot check`", file=sys.stderr)
                return 2
        if not routes:
            print("no digest routes in this config (add a route with mode: digest)")
            return 0
        for route in routes:
            if args.now:
                run = await app.digests.run(route)
                console = ConsoleDeliverer()
                await app.attach_deliverer(console, ConsoleWebhooks(console)).deliver_due()
                print(f"{route.id}: {run.entries} entries in {run.messages} message(s)")
                continue
            run, planned = await app.digests.preview(route)
            print(f"── {route.config.describe()}: {run.entries} entries since {run.period_start:%Y-%m-%d %H:%M} UTC")
            for message in planned:
                spec = MessageSpec.from_json(message.payload)
                if spec.content:
                    print(spec.content)
                for embed in spec.embeds:
                    print(render_embed_as_text(embed))
        return 0

    return _with_app(args, job)


def cmd_import_opml(args: argparse.Namespace) -> int:
    from bot.admin import SourceAdmin

    data = Path(args.file).read_bytes() if args.file != "-" else sys.stdin.buffer.read()

    async def job(app: App) -> int:
        report = await SourceAdmin(app).import_opml(data, channel_id=args.channel, guild_id=None,
                                                    where=str(args.file))
        print(f"added {len(report.added)} sources, skipped {len(report.skipped)}")
        for source_id in report.added:
            print(f"  + {source_id}")
        for reason in report.skipped:
            print(f"  - {reason}")
        return 0

    return _with_app(args, job)


def cmd_export_opml(args: argparse.Namespace) -> int:
    from bot.admin import SourceAdmin

    async def job(app: App) -> int:
        data = SourceAdmin(app).export_opml()
        if args.output and args.output != "-":
            Path(args.output).write_bytes(data)
        else:
            sys.stdout.buffer.write(data)
        return 0

    return _with_app(args, job)


def cmd_sources(args: argparse.Namespace) -> int:
    """``sources list`` shows the effective list; ``sources reset ID`` drops Discord-side changes."""
    from bot.admin import SourceAdmin

    async def job(app: App) -> int:
        if args.action == "reset":
            if not args.source:
                print("digestbot: sources reset needs a source id", file=sys.stderr)
                return 2
            done = await SourceAdmin(app).reset(args.source)
            print(f"{args.source}: " + ("Discord-side changes forgotten; the config file applies again" if done
                                        else "nothing was changed from Discord"))
            return 0
        for source in app.config.sources:
            origin = "added from Discord/OPML" if source.origin == "discord" else "config file"
            state = "" if source.enabled else " [paused]"
            print(f"{source.id}{state}: {source.name} <{source.url}> ({origin})")
        return 0

    return _with_app(args, job)


def cmd_run(args: argparse.Namespace) -> int:
    from bot.app import run_discord, run_dry

    config = _config(args)
    if args.dry_run or args.once:
        if not args.dry_run:
            print("--once implies --dry-run", file=sys.stderr)
        outcomes = asyncio.run(run_dry(config, once=args.once))
        _print_outcomes(outcomes)
        return 0
    asyncio.run(run_discord(config))
    return 0


def cmd_poll(args: argparse.Namespace) -> int:
    from bot.app import App

    config = _config(args)

    async def go() -> int:
        async with App.open(config) as app:
            outcomes = await app.poll_all(force=True)
            await asyncio.to_thread(app.indexer.catch_up)
            _print_outcomes(outcomes)
            return 0 if all(o.ok for o in outcomes) else 1

    return asyncio.run(go())


def _print_outcomes(outcomes: Sequence[PollOutcome]) -> None:
    for o in outcomes:
        if o.ok:
            detail = "not modified" if o.not_modified else (
                f"{o.new_entries} new, {o.queued_messages} message(s) queued")
            print(f"  ok    {o.source_id}: {detail}", file=sys.stderr)
        else:
            print(f"  FAIL  {o.source_id}: {o.error or o.skipped}", file=sys.stderr)


def cmd_search(args: argparse.Namespace) -> int:
    from bot.catalog import Catalog
    from bot.clock import utc_now
    from bot.search.index import SearchIndex
    from bot.store.sqlite import SQLiteStorage

    config = _config(args)
    storage = SQLiteStorage(config.storage.path)
    index = SearchIndex.open(config.storage.resolved_index_path)
    try:
        from bot.indexer import Indexer

        Indexer(storage, index).catch_up()
        catalog = Catalog(config, storage, index, clock=utc_now)
        page = catalog.search(" ".join(args.query), topic=args.topic, source=args.source, since=args.since,
                              until=args.until, page=1, per_page=args.limit)
    finally:
        index.close()
        storage.close()
    if args.json:
        for item in page.items:
            e = item.entry
            print(json.dumps({"title": e.title, "link": e.link, "source": item.source_name,
                              "source_id": e.source_id,
                              "published": _iso(e.published or e.first_seen),
                              "topics": list(e.topics), "score": round(item.score, 4)}, ensure_ascii=False))
        return 0
    if not page.items:
        print("no matches")
        return 0
    print(f"{page.total} match(es); showing {len(page.items)}\n")
    for rank, item in enumerate(page.items, 1):
        e = item.entry
        when = (e.published or e.first_seen)
        date = f"{when:%Y-%m-%d}" if when else "undated"
        topics = f" · {', '.join(e.topics)}" if e.topics else ""
        print(f"{rank}. {e.title}\n   {e.link or '(no link)'}\n   {item.source_name} · {date}{topics}"
              f"\n   {plain(item.snippet)}\n")
    return 0


def plain(markdown: str) -> str:
    """A snippet as terminal text: bold markers, escapes and zero-width joiners removed."""
    return re.sub(r"\\(.)", r"\1", markdown.replace("**", "")).replace("\u200b", "")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def cmd_reindex(args: argparse.Namespace) -> int:
    from bot.indexer import Indexer
    from bot.search.index import SearchIndex
    from bot.store.sqlite import SQLiteStorage

    config = _config(args)
    storage = SQLiteStorage(config.storage.path)
    index = SearchIndex.open(config.storage.resolved_index_path)
    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if tty:
            width = 30
            filled = int(width * done / max(total, 1))
            print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="", file=sys.stderr)

    try:
        count = Indexer(storage, index).rebuild(progress)
    finally:
        index.close()
        storage.close()
    if tty:
        print(file=sys.stderr)
    print(f"reindexed {count} entries")
    return 0


def _health_port(args: argparse.Namespace) -> int:
    """--port, else the config's health.port, else $DIGESTBOT_HEALTH_PORT, else 8080."""
    if args.port:
        return int(args.port)
    try:
        return _config(args).health.port
    except DigestError:
        return int(os.environ.get("DIGESTBOT_HEALTH_PORT", "8080"))


def cmd_healthcheck(args: argparse.Namespace) -> int:
    port = _health_port(args)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            body = response.read().decode()
            print(body)
            return 0 if response.status == 200 else 1
    except Exception as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="digestbot", description=__doc__)
    parser.add_argument("--version", action="version", version=f"digestbot {__version__}")
    parser.add_argument("--log-level", default=os.environ.get("DIGESTBOT_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", "-c", help="config file (default: $DIGESTBOT_CONFIG, else "
                       "config/digestbot.yaml, else the bundled demo)")
        return p

    run = add("run", "run the bot (polls on schedule, posts to Discord, answers slash commands)")
    run.add_argument("--dry-run", action="store_true", help="print what would be posted instead of posting")
    run.add_argument("--once", action="store_true", help="poll every source once, print, and exit")
    run.set_defaults(func=cmd_run)
    poll = add("poll", "poll every source once and store what is new (no posting)")
    poll.add_argument("--once", action="store_true", help="(default) poll once and exit")
    poll.set_defaults(func=cmd_poll)
    add("check", "validate the config and print a summary of sources and routes").set_defaults(func=cmd_check)
    search = add("search", "search stored entries")
    search.add_argument("query", nargs="*", help="words, \"a phrase\", -exclude, prefix*")
    search.add_argument("--topic")
    search.add_argument("--source")
    search.add_argument("--since", help="e.g. 7d or 2026-01-01")
    search.add_argument("--until")
    search.add_argument("--limit", type=int, default=10)
    search.add_argument("--json", action="store_true", help="one JSON object per result")
    search.set_defaults(func=cmd_search)
    add("reindex", "rebuild the search index from the database").set_defaults(func=cmd_reindex)
    health = add("healthcheck", "exit 0 when the running bot's /healthz is OK")
    health.add_argument("--port", type=int, help="default: health.port from the config")
    health.set_defaults(func=cmd_healthcheck)
    digest = add("digest", "show (default) or post now the next digest of digest routes")
    digest.add_argument("route", nargs="?", help="a digest route id (default: all)")
    digest.add_argument("--now", action="store_true", help="queue it now and print it (dry run)")
    digest.set_defaults(func=cmd_digest)
    imp = add("import-opml", "add every feed of an OPML file as a source (stored in the database)")
    imp.add_argument("file", help="OPML file, or - for stdin")
    imp.add_argument("--channel", type=int, help="channel id the new sources post into")
    imp.set_defaults(func=cmd_import_opml)
    exp = add("export-opml", "write the effective source list as OPML")
    exp.add_argument("--output", "-o", help="file (default: stdout)")
    exp.set_defaults(func=cmd_export_opml)
    srcs = add("sources", "list the effective sources, or forget Discord-side changes of one")
    srcs.add_argument("action", choices=["list", "reset"], nargs="?", default="list")
    srcs.add_argument("source", nargs="?")
    srcs.set_defaults(func=cmd_sources)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    for noisy in ("apscheduler", "discord.gateway", "discord.client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args))
    except DigestError as exc:
        print(f"digestbot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
