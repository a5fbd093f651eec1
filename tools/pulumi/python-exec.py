"""Runs one Pulumi Python program for the project's language host (language-host.ts), as Pulumi's
pulumi-language-python-exec does for pulumi-language-python: the run's settings arrive as flags, the stack's config
in PULUMI_CONFIG and PULUMI_CONFIG_SECRET_KEYS; the program runs as __main__ inside pulumi.runtime.run_in_stack.

Exit 0 when the program ran, 32 when it failed and the error was already sent to the engine's log (the host then
tells the engine to bail without printing it again).
"""

import argparse
import asyncio
import logging
import os
import runpy
import sys
import traceback

ERROR_ALREADY_REPORTED = 32

try:
    import pulumi
    import pulumi.runtime
except ImportError:
    # stderr reaches the engine's display as the program's output.
    print(traceback.format_exc(), file=sys.stderr)
    print("The pulumi package is not installed for this Python: pip install -r requirements.txt "
          "in the program's virtualenv (runtime option virtualenv in Pulumi.yaml).", file=sys.stderr)
    sys.exit(1)


def main() -> int:
    parser = argparse.ArgumentParser(description="Run a Pulumi Python program")
    for name in ("monitor", "engine", "organization", "project", "stack", "pwd", "root_directory", "parallel", "dry_run"):
        parser.add_argument(f"--{name}")
    parser.add_argument("PROGRAM")
    parser.add_argument("ARGS", nargs="*")
    args = parser.parse_args()

    pulumi.runtime.set_all_config(pulumi.runtime.get_config_env(), pulumi.runtime.get_config_secret_keys_env())
    pulumi.runtime.configure(
        pulumi.runtime.Settings(
            monitor=args.monitor,
            engine=args.engine,
            project=args.project,
            stack=args.stack,
            parallel=int(args.parallel) if args.parallel else None,
            dry_run=args.dry_run == "true",
            organization=args.organization,
            root_directory=args.root_directory,
        )
    )
    sys.argv = [args.PROGRAM] + args.ARGS
    if args.pwd:
        os.chdir(args.pwd)
    # The program is a folder with __main__.py (the default ".") or a file; its folder is importable, as with python DIR.
    program = os.path.abspath(args.PROGRAM)
    sys.path.insert(0, program if os.path.isdir(program) else os.path.dirname(program))

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # A failed resource leaves futures nobody awaits; asyncio would log each of them at exit, as noise.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    try:
        loop.run_until_complete(pulumi.runtime.run_in_stack(lambda: runpy.run_path(program, run_name="__main__")))
        return 0
    except pulumi.RunError as error:
        pulumi.log.error(str(error))
    except Exception:  # the program's own error, with its traceback, as Pulumi's host shows it
        pulumi.log.error(traceback.format_exc())
    finally:
        loop.close()
        sys.stdout.flush()
        sys.stderr.flush()
    return ERROR_ALREADY_REPORTED


if __name__ == "__main__":
    sys.exit(main())
