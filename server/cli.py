"""The `quantdesk` command: serve, stdio, tools, call, keys, export-wellknown, export-schemas."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from quantdesk.server.errors import InvalidArgument, QuantdeskError
from quantdesk.server.settings import Settings, is_loopback_host

logger = logging.getLogger("quantdesk.cli")
Command = Callable[[argparse.Namespace, Settings], int]
_COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    def register(fn: Command) -> Command:
        _COMMANDS[name] = fn
        return fn

    return register


def _print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quantdesk", description="MCP-first crypto market tool server")
    parser.add_argument("--data-dir", type=Path, help="state and artifacts (default: $QUANTDESK_DATA_DIR or "
                        "~/.local/share/quantdesk)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server (MCP at /mcp, REST, discovery, metrics)")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8765)")
    serve.add_argument("--data-dir", type=Path, dest="serve_data_dir", help=argparse.SUPPRESS)
    serve.add_argument("--compat", action="append", default=[], metavar="PROFILE:PORT",
                       help="also serve one legacy API (ais, alphapulse, aleatoric, mantis, tradeos) on its own port, "
                            "at its original paths; repeatable")
    serve.add_argument("--mcp-extension", metavar="MODULE:ATTR",
                       help="serve an extra MCP surface beside the registry (the conformance suite's fixtures)")

    sub.add_parser("stdio", help="serve MCP over stdin/stdout (for Claude Desktop and other local clients)")

    tools = sub.add_parser("tools", help="list the registered tools")
    tools.add_argument("--json", action="store_true", help="full descriptions with schemas, as JSON")

    call = sub.add_parser("call", help="call a tool in-process and print its structured result as JSON")
    call.add_argument("name")
    call.add_argument("--args", default="{}", help="the arguments as a JSON object")

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key; it is printed once")
    create.add_argument("--scopes", required=True, help="comma-separated: read,generate,stream,metrics,mcp,"
                        "trade,control,agents,admin")
    create.add_argument("--name")
    keys_list = keys_sub.add_parser("list", help="list keys (never the secrets)")
    keys_list.add_argument("--json", action="store_true")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id or name")
    revoke.add_argument("key")

    users = sub.add_parser("users", help="manage password users (the OAuth2 password flow at POST /token)")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    user_create = users_sub.add_parser("create", help="create a user; the password is read from stdin")
    user_create.add_argument("username")
    user_create.add_argument("--scopes", required=True, help="comma-separated, as for keys")
    users_sub.add_parser("list", help="list users (never the password hashes)")
    user_delete = users_sub.add_parser("delete", help="delete a user; their tokens stop working at once")
    user_delete.add_argument("username")

    state = sub.add_parser("state", help="check the state store, or move a damaged or emptied one aside")
    state_sub = state.add_subparsers(dest="state_command", required=True)
    state_check = state_sub.add_parser("check", help="full integrity check: problems, tables, rows, the key marker")
    state_check.add_argument("--json", action="store_true")
    state_sub.add_parser("recover", help="stop the server first: move a damaged or emptied store aside (kept, "
                         "never deleted), clear the key marker, and list what was lost")

    describe = sub.add_parser("describe", help="stylized facts of a canonical-event Parquet file, against their bands")
    describe.add_argument("file", type=Path)
    describe.add_argument("--json", action="store_true", help="the full result as JSON")

    calibrate = sub.add_parser("calibrate", help="fit a SimulationManifest to your own one-minute candles "
                               "(CSV or Parquet: timestamp, close, volume) and compare their facts")
    calibrate.add_argument("file", type=Path)
    calibrate.add_argument("--preset", default="default", help="preset to start the fit from")
    calibrate.add_argument("--json", action="store_true", help="the full result as JSON")

    normalize = sub.add_parser("normalize", help="normalize a recorded feed (JSONL or JSONL.gz) into Parquet")
    normalize.add_argument("input", type=Path)
    normalize.add_argument("-o", "--output", type=Path, required=True)
    normalize.add_argument("--source", required=True, help="binance, okx, bybit, hyperliquid, cme, sgx, synthetic")
    normalize.add_argument("--symbol", help="venue symbol for messages that carry none")
    normalize.add_argument("--market", help="binance: spot, usdm or coinm; bybit: spot, linear or inverse")
    normalize.add_argument("--contract-size", action="append", default=[], type=_contract_size, metavar="SYMBOL=SIZE",
                           help="contract value of a derivative, repeatable: OKX instId=ctVal (DOGE-USDT-SWAP=1000), "
                                "binance COIN-M symbol=USD per contract, CME root or SGX base=units per contract")
    normalize.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")

    export = sub.add_parser("export-wellknown", help="write .well-known/ documents from the registry")
    export.add_argument("--dir", type=Path, default=None)
    schemas = sub.add_parser("export-schemas", help="write schemas/*.json from the shared models")
    schemas.add_argument("--dir", type=Path, default=None)

    return parser


def _source_dir(package: str) -> Path:
    import importlib

    module = importlib.import_module(package)
    return Path(next(iter(module.__path__)))


def load_extension(spec: str) -> Any:
    """The MCP extension object named `module:attr` (a class is instantiated)."""
    import importlib

    module_name, _, attr = spec.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attr or "extension")
    except (ImportError, AttributeError) as exc:
        raise InvalidArgument(f"--mcp-extension {spec}: {exc}") from None
    logger.warning("MCP extension loaded", extra={"extension": spec})
    return found() if isinstance(found, type) else found


def _compat_listeners(specs: list[str], known: list[str]) -> list[tuple[str, int]]:
    listeners = []
    for spec in specs:
        name, _, port = spec.partition(":")
        if name not in known or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidArgument(f"--compat {spec}: expected PROFILE:PORT with a profile among {', '.join(known)}")
        listeners.append((name, int(port)))
    ports = [port for _, port in listeners]
    if len(set(ports)) != len(ports):
        raise InvalidArgument("--compat: two listeners on one port")
    return listeners


@command("serve")
def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from quantdesk.server.app import create_app, create_profile_app
    from quantdesk.server.core import build_core
    from quantdesk.server.rest_rows import discover_profiles

    settings = settings.with_overrides(host=args.host, port=args.port, mcp_extension=args.mcp_extension)
    profiles = {profile.name: profile for profile in discover_profiles()}
    listeners = _compat_listeners(args.compat, sorted(profiles))
    if settings.port in {port for _, port in listeners}:
        raise InvalidArgument(f"--compat: port {settings.port} is the main port")
    core = build_core(settings)
    open_mode = core.authenticator.open_mode()
    if open_mode and not is_loopback_host(settings.host):
        logger.error("refusing to bind %s with no API key configured: set QUANTDESK_API_KEY or run "
                     "`quantdesk keys create`, or bind 127.0.0.1", settings.host)
        core.services.close()
        return 2
    if open_mode:
        logger.warning("no API key configured: serving loopback callers only, with every scope")
    extension = load_extension(settings.mcp_extension) if settings.mcp_extension else None
    app = create_app(settings, core=core, extension=extension)
    servers = [uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None,
                                             access_log=False, timeout_graceful_shutdown=5))]
    for name, port in listeners:
        companion = create_profile_app(settings, core, profiles[name])
        servers.append(_companion_server(uvicorn.Config(companion, host=settings.host, port=port, log_config=None,
                                                 access_log=False, lifespan="off", timeout_graceful_shutdown=5)))
        logger.info("serving a legacy API on its own port", extra={"profile": name, "port": port})
    logger.info("serving", extra={"url": f"http://{settings.host}:{settings.port}", "mcp": "/mcp",
                                  **({"dashboard": f"http://{settings.host}:{settings.port}/ui/"}
                                     if settings.dashboard else {}),
                                  "data_dir": str(settings.data_dir), "tools": len(core.registry.list_tools())})
    # What start-up built (modules, schemas, tables) lives as long as the process: freezing it keeps the
    # collector's full passes, which otherwise scan it all, out of order placement's tail latency.
    gc.collect()
    gc.freeze()
    asyncio.run(_serve_together(servers))
    return 0


def _companion_server(config: Any) -> Any:
    """A listener beside the main server: the main one handles the signals and tells this one to stop."""
    import uvicorn

    class Companion(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Companion(config)


async def _serve_together(servers: list[Any]) -> None:
    main, companions = servers[0], servers[1:]

    async def run_main() -> None:
        try:
            await main.serve()
        finally:
            for companion in companions:
                companion.should_exit = True

    await asyncio.gather(run_main(), *(companion.serve() for companion in companions))


@command("stdio")
def _stdio(args: argparse.Namespace, settings: Settings) -> int:
    from mcp.server.stdio import stdio_server

    from quantdesk.server.auth import KeyStore
    from quantdesk.server.core import build_core, package_version
    from quantdesk.server.mcp_binding import McpBinding
    from quantdesk.server.state import StateStore

    # A damaged store still refuses to start (with its message) before the client is told anything; the
    # tool domains load on the first request that needs them, so `initialize` is answered at once.
    state = StateStore(settings.state_path)
    try:
        KeyStore(state, settings.env_api_key)  # an emptied store whose keys existed refuses here too
    finally:
        state.close()
    binding = McpBinding(lambda: build_core(settings), "stdio", package_version(),
                         page_size=settings.tools_page_size, max_resource_bytes=settings.max_resource_bytes)
    server = binding.build()

    async def run() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    try:
        asyncio.run(run())
    finally:
        core = binding.built_core()
        if core is not None:
            core.services.close()
    return 0


@command("tools")
def _tools(args: argparse.Namespace, settings: Settings) -> int:
    from quantdesk.server.registry import ToolRegistry, discover_tools

    registry = discover_tools(ToolRegistry(), extra_modules=settings.tool_modules)
    if args.json:
        _print_json([entry.describe() for entry in registry.list_tools()])
        return 0
    width = max(len(e.name) for e in registry.list_tools())
    for entry in registry.list_tools():
        sys.stdout.write(f"{entry.name:<{width}}  [{entry.scope}]  {entry.summary()['description'].splitlines()[0]}\n")
    return 0


@command("call")
def _call(args: argparse.Namespace, settings: Settings) -> int:
    try:
        arguments = orjson.loads(args.args)
    except orjson.JSONDecodeError as exc:
        sys.stderr.write(f"--args is not valid JSON: {exc}\n")
        return 2
    if not isinstance(arguments, dict):
        sys.stderr.write("--args must be a JSON object\n")
        return 2

    def progress(done: float, total: float | None, message: str | None) -> None:
        sys.stderr.write(f"progress {done:g}{'/' + format(total, 'g') if total else ''} {message or ''}\n")

    try:
        result = _run_tool(settings, args.name, arguments, progress)
    except QuantdeskError as exc:
        problems = getattr(exc, "problems", [])
        sys.stderr.write(f"{exc.kind}: {exc.message}\n")
        _print_json({"error": {"kind": exc.kind, "message": exc.message,
                               "problems": [p.as_dict() for p in problems]}})
        return 1
    _print_json(result)
    return 0


def _run_tool(settings: Settings, name: str, arguments: dict[str, Any],
              on_progress: Callable[[float, float | None, str | None], None] | None = None) -> dict[str, Any]:
    """Call a tool in-process as the local user (the CLI door): the same registry and validation as any door."""
    from quantdesk.server.context import LOCAL_PRINCIPAL, CallContext
    from quantdesk.server.core import build_core
    from quantdesk.server.logs import new_request_id

    # A one-shot command does its call and leaves: background work (jobs to resume, the desk's live runner,
    # research agents) belongs to the long-lived server on the same data directory.
    core = build_core(settings.with_overrides(background=False))

    async def progress(done: float, total: float | None, message: str | None) -> None:
        if on_progress is not None:
            on_progress(done, total, message)

    ctx = CallContext(LOCAL_PRINCIPAL, core.services, new_request_id(), door="cli", progress=progress)
    try:
        return asyncio.run(core.registry.call_tool(name, arguments, ctx)).structured
    finally:
        core.services.close()


def _with_local_files(settings: Settings, *paths: Path) -> Settings:
    """The shell user names files of their own: let the path-taking tools reach those folders."""
    folders = tuple(p.resolve().parent for p in paths)
    return settings.with_overrides(import_dirs=(*settings.import_dirs, *folders))


@command("describe")
def _describe(args: argparse.Namespace, settings: Settings) -> int:
    settings = _with_local_files(settings, args.file)
    result = _run_tool(settings, "describe_dataset", {"path": str(args.file.resolve())})
    if args.json:
        _print_json(result)
        return 0
    rows = result["rows"]
    sys.stdout.write(f"{args.file}: {rows.get('trade', 0)} trades, {rows.get('book', 0)} book rows\n")
    for fact in result["facts"]:
        value = "n/a" if fact["value"] is None else f"{fact['value']:.4g}"
        verdict = {True: "pass", False: "FAIL", None: "n/a"}[fact["passed"]]
        sys.stdout.write(f"  {verdict:<5} {fact['name']:<40} {value:>10}   band {fact['band']}\n")
    summary = result["summary"]
    sys.stdout.write(f"passed {summary['passed']}, failed {summary['failed']}, "
                     f"not applicable {summary['not_applicable']}\n")
    return 0


@command("calibrate")
def _calibrate(args: argparse.Namespace, settings: Settings) -> int:
    settings = _with_local_files(settings, args.file)
    result = _run_tool(settings, "calibrate_manifest", {"path": str(args.file.resolve()), "preset": args.preset})
    if args.json:
        _print_json(result)
        return 0
    sys.stdout.write(f"{args.file}: {result['minutes']} one-minute returns\n")
    sys.stdout.write(f"  {'fact':<34} {'file':>10} {'model':>10}   band\n")
    for row in result["facts"]:
        verdict = "pass" if row["passed"] else "FAIL"
        sys.stdout.write(f"  {row['fact']:<34} {row['data']:>10.4g} {row['model']:>10.4g}   "
                         f"[{row['band_low']:.4g}, {row['band_high']:.4g}] {verdict}\n")
    for note in result["notes"]:
        sys.stdout.write(f"  note: {note}\n")
    _print_json(result["manifest"])
    return 0


def _contract_size(text: str) -> tuple[str, float]:
    """`SYMBOL=SIZE` of --contract-size."""
    symbol, sep, value = text.partition("=")
    try:
        size = float(value)
    except ValueError:
        size = 0.0
    if not sep or not symbol or not size > 0:
        raise argparse.ArgumentTypeError(f"expected SYMBOL=SIZE with a positive size, got {text!r}")
    return symbol, size


@command("normalize")
def _normalize(args: argparse.Namespace, settings: Settings) -> int:
    settings = _with_local_files(settings, args.input, args.output)
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    arguments = {"source": args.source, "input_path": str(args.input.resolve()),
                 "output_path": str(args.output.resolve()), "symbol": args.symbol, "market": args.market,
                 "contract_sizes": dict(args.contract_size) or None, "overwrite": args.overwrite or None}
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                  TextColumn("{task.fields[lines]}"), console=_stderr_console()) as bar:
        task = bar.add_task(args.input.name, total=None, lines="")

        def progress(done: float, total: float | None, message: str | None) -> None:
            bar.update(task, completed=done, total=total, lines=message or "")

        result = _run_tool(settings, "normalize_file", {k: v for k, v in arguments.items() if v is not None},
                           progress)
    counts = result["counts"]
    sys.stderr.write(f"{result['rows_written']} events from {result['lines']} lines in "
                     f"{result['elapsed_seconds']:.1f} s: accepted {counts['accepted']}, rejected "
                     f"{counts['rejected']}, non-events {counts['non_event']}, gaps {counts['gaps']}\n")
    _print_json({k: result[k] for k in ("output_path", "rows_written", "lines", "counts", "rejections")})
    return 0


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


@command("keys")
def _keys(args: argparse.Namespace, settings: Settings) -> int:
    from quantdesk.server.auth import KeyStore, parse_scopes
    from quantdesk.server.state import StateStore

    state = StateStore(settings.state_path)
    try:
        store = KeyStore(state)
        if args.keys_command == "create":
            record, secret = store.create(parse_scopes(args.scopes), args.name)
            sys.stderr.write(f"created key {record.id} ({record.name}) with scopes {','.join(sorted(record.scopes))}; "
                             "it is shown once, store it now:\n")
            sys.stdout.write(secret + "\n")
        elif args.keys_command == "list":
            records = [r.as_dict() for r in store.list()]
            if args.json:
                _print_json(records)
            for r in [] if args.json else records:
                status = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
                sys.stdout.write(f"{r['id']}  {r['name']:<20} {','.join(r['scopes']):<40} {status}\n")  # type: ignore[arg-type]
        else:
            record = store.revoke(args.key)
            sys.stdout.write(f"revoked {record.id} ({record.name})\n")
    finally:
        state.close()
    return 0


@command("users")
def _users(args: argparse.Namespace, settings: Settings) -> int:
    from quantdesk.server.auth import parse_scopes
    from quantdesk.server.oauth import UserStore
    from quantdesk.server.state import StateStore

    state = StateStore(settings.state_path)
    try:
        store = UserStore(state)
        if args.users_command == "create":
            # stdin, not an argument: a password on the command line lands in shell history and `ps`
            password = sys.stdin.readline().rstrip("\n")
            user = store.create(args.username, password, parse_scopes(args.scopes))
            sys.stdout.write(f"created user {user.username} with scopes {','.join(sorted(user.scopes))}\n")
        elif args.users_command == "list":
            _print_json([user.as_dict() for user in store.list()])
        else:
            store.delete(args.username)
            sys.stdout.write(f"deleted user {args.username}\n")
    finally:
        state.close()
    return 0


@command("state")
def _state(args: argparse.Namespace, settings: Settings) -> int:
    from quantdesk.server.auth import KeyMarker
    from quantdesk.server.errors import Conflict
    from quantdesk.server.state import inspect_store, move_aside, utc_stamp

    path = settings.state_path
    report, marker = inspect_store(path), KeyMarker(path)
    emptied = not report.damaged and not report.tables.get("api_keys") and marker.exists()
    verdict = "damaged" if report.damaged else "emptied" if emptied else "ok"
    if args.state_command == "check":
        if args.json:
            _print_json({**report.as_dict(), "verdict": verdict, "key_marker": str(marker.path) if marker.exists()
                         else None, "marked_keys": marker.keys()})
            return 0 if verdict == "ok" else 1
        sys.stdout.write(f"state store {path}: {report.bytes} bytes" if report.exists else
                         f"state store {path}: no file yet (created empty at the next start)")
        sys.stdout.write(f", {verdict}\n")
        for problem in report.problems:
            sys.stdout.write(f"  problem: {problem}\n")
        for table, rows in report.tables.items():
            sys.stdout.write(f"  table {table}: {'unreadable' if rows is None else f'{rows} rows'}\n")
        if marker.exists():
            sys.stdout.write(f"  key marker {marker.path}: keys were stored ({len(marker.keys())} recorded)\n")
        if verdict == "emptied":
            sys.stdout.write("  the key marker says keys were stored, but the store holds none\n")
        if verdict != "ok":
            sys.stdout.write(f"recover with: quantdesk --data-dir {path.parent} state recover\n")
        return 0 if verdict == "ok" else 1
    if verdict == "ok":
        raise Conflict(f"the state store {path} passed its checks: nothing to recover")
    label, marked_keys = f"damaged-{utc_stamp()}", marker.keys()
    moved = move_aside(path, label)
    marker_moved = marker.move_aside(label)
    for source, target in moved:
        sys.stdout.write(f"moved {source} -> {target}\n")
    if marker_moved is not None:
        sys.stdout.write(f"cleared the key marker (kept as {marker_moved})\n")
    lost = [f"{table} ({'unreadable' if rows is None else f'{rows} rows'})" for table, rows in report.tables.items()]
    sys.stdout.write(f"lost from the store: {', '.join(lost) if lost else 'nothing readable'}; the cache index "
                     "goes with it (artifact files stay on disk)\n")
    for key in marked_keys:
        if not key.get("revoked_at"):
            sys.stdout.write(f"  lost API key {key.get('id')} ({key.get('name')}), scopes "
                             f"{','.join(key.get('scopes') or [])}: create it again with `quantdesk keys create`\n")
    sys.stdout.write("the next start creates an empty store\n")
    return 0


@command("export-wellknown")
def _export_wellknown(args: argparse.Namespace, settings: Settings) -> int:
    from quantdesk.server.discovery import write_well_known
    from quantdesk.server.registry import ToolRegistry, discover_tools

    folder = args.dir or _source_dir("quantdesk.well_known")
    for path in write_well_known(discover_tools(ToolRegistry()), folder):
        sys.stdout.write(f"wrote {path}\n")
    return 0


@command("export-schemas")
def _export_schemas(args: argparse.Namespace, settings: Settings) -> int:
    from quantdesk.schemas.export import write_schemas

    for path in write_schemas(args.dir or _source_dir("quantdesk.schemas")):
        sys.stdout.write(f"wrote {path}\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from quantdesk.server.logs import configure_logging

    args = _parser().parse_args(argv)
    settings = Settings.from_env()
    data_dir = getattr(args, "serve_data_dir", None) or args.data_dir
    settings = settings.with_overrides(data_dir=data_dir, log_level=args.log_level)
    configure_logging(settings.log_level)
    try:
        return _COMMANDS[args.command](args, settings)
    except InvalidArgument as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return 2
    except QuantdeskError as exc:
        sys.stderr.write(f"{exc.kind}: {exc.message}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())

