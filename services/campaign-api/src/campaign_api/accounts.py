"""The accounts of people who sign in to the web app, from the command line:

    python -m campaign_api.accounts add EMAIL
        the password from stdin when it is not a terminal (one line), else one generated
        and printed once; never a default
    python -m campaign_api.accounts first-admin EMAIL PASSWORD_FILE
        (make up) only when no account exists: a generated password, written to
        PASSWORD_FILE (mode 0600) and printed once

DATABASE_URL says where; campaign-api's migrations are applied first."""

import argparse
import asyncio
import os
import secrets
import sys
from pathlib import Path

from pydantic import ValidationError

from campaign_api import handlers
from campaign_api.adapters.passwords import Passwords
from campaign_api.adapters.postgres import AccountRepository, CampaignTransaction
from campaign_api.bootstrap import SERVICE
from campaign_api.domain import Account, AccountExists, NewAccount
from servicekit.database import create_pool, migrate
from servicekit.logging import configure_logging
from servicekit.uow import UnitOfWork


def generated_password() -> str:
    return secrets.token_urlsafe(18)  # 24 characters, 144 bits


async def add_account(database_url: str, email: str, password: str, only_if_none: bool = False) -> Account | None:
    """Creates the account (NewAccount's rules: a valid email, a password of 12 characters
    or more); with `only_if_none`, only when there is no account yet (None otherwise)."""
    account = NewAccount(email=email, password=password)
    await migrate(database_url, SERVICE.schema, *SERVICE.migration_owners())
    pool = await create_pool(database_url, SERVICE.schema, size=1)
    try:
        if only_if_none and await AccountRepository(pool).any():
            return None
        return await handlers.add_account(account, UnitOfWork(pool, CampaignTransaction), Passwords())
    finally:
        await pool.close()


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text + "\n")
    os.chmod(path, 0o600)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m campaign_api.accounts", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add a person who can sign in")
    add.add_argument("email")
    first = commands.add_parser("first-admin", help="the first account, when there is none")
    first.add_argument("email")
    first.add_argument("password_file", type=Path)
    args = parser.parse_args(argv)
    configure_logging("campaign-api", "WARNING")  # the migrations' lines are not this command's answer
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        print("DATABASE_URL is not set", file=sys.stderr)
        return 2

    generated = args.command == "first-admin" or sys.stdin.isatty()
    password = generated_password() if generated else sys.stdin.readline().rstrip("\r\n")
    try:
        account = asyncio.run(add_account(database_url, args.email, password, only_if_none=args.command == "first-admin"))
    except ValidationError as error:
        for item in error.errors(include_url=False):
            print(f"{'.'.join(map(str, item['loc']))}: {item['msg']}", file=sys.stderr)
        return 2
    except AccountExists:
        print(f"{args.email} has an account already", file=sys.stderr)
        return 1
    if account is None:
        where = f" (its first password is in {args.password_file})" if args.password_file.exists() else ""
        print(f"an account exists already{where}")
        return 0
    if args.command == "first-admin":
        _write_secret(args.password_file, password)
        print(f"first account: {account.email}  password: {password}  (kept in {args.password_file}, mode 0600;"
              " shown once)")
    elif generated:
        print(f"account {account.email}  password: {password}  (shown once)")
    else:
        print(f"account {account.email} added")
    return 0


if __name__ == "__main__":
    sys.exit(main())
