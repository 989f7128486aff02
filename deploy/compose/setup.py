"""compose.yaml's one-shot `setup` service: the config, with a generated admin, on the first start only.

    python setup.py --template /opt/hulk-ops/template.yaml --out /etc/hulk-ops

writes, in `--out` (a volume every hulk-ops service mounts):
- `config.yaml`: the template plus a local user `admin` (role admin) with a random password and an API token
  (only their argon2 hashes);
- `.streamlit/config.toml`: the dashboard's cookie secret (the dashboard runs with `--out` as its working
  directory, where Streamlit reads it);
- `admin-credentials.txt` (mode 600): the admin's password and API token, to read once with
  `docker compose exec dashboard cat /etc/hulk-ops/admin-credentials.txt`.
A later start keeps what exists (users added since stay). No secret is printed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
from pathlib import Path

from hulk_ops.actions.useradd import EditError, add_user
from hulk_ops.core.config import ConfigError


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def setup(template: Path, out: Path) -> bool:
    """False when `out` already holds a config (nothing is changed)."""
    config = out / "config.yaml"
    if config.exists():
        return False
    draft = out / "config.yaml.new"  # the config appears last: a setup killed midway starts over
    shutil.copyfile(template, draft)
    password = secrets.token_urlsafe(18)
    token = add_user(draft, "admin", "admin", password)
    (out / ".streamlit").mkdir(exist_ok=True)
    write_private(out / ".streamlit" / "config.toml", f'[server]\ncookieSecret = "{secrets.token_urlsafe(48)}"\n')
    write_private(out / "admin-credentials.txt",
                  f"dashboard user: admin\npassword: {password}\nAPI token (HULK_OPS_TOKEN, Bearer): {token}\n")
    os.replace(draft, config)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="setup.py", description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        created = setup(args.template, args.out)
    except (ConfigError, EditError, OSError) as exc:
        print(f"setup: {exc}", file=sys.stderr)
        return 2
    if created:
        print(f"setup: wrote {args.out}/config.yaml with a generated admin; its password and API token: "
              f"docker compose exec dashboard cat {args.out}/admin-credentials.txt")
    else:
        print(f"setup: {args.out}/config.yaml exists; kept as it is")
    return 0


if __name__ == "__main__":
    sys.exit(main())
