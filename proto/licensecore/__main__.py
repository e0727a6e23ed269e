"""``licensecore`` (and ``python -m licensecore``): the command line, started so that the allocator
is tuned before NumPy and Arrow start their threads (``server.memory`` says why)."""

from licensecore.server.memory import keep_freed_memory


def main() -> int:
    """Tune the allocator, then run the command line."""
    keep_freed_memory()
    from licensecore.clients.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
