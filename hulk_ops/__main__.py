"""`python -m hulk_ops` is the `hulk-ops` command."""

from hulk_ops.entrypoints.cli import main

raise SystemExit(main())
