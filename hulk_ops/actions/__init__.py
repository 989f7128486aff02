"""Guarded actions: the only code in hulk-ops that changes anything (see docs/ACTIONS.md).

The public API is the guard, `hulk_ops.actions.guard.GuardedAction` (built by
`hulk_ops.actions.guard.build_guard`), with the typed requests of `hulk_ops.actions.model`. Executors
(`hulk_ops.actions.executors.*`) are held by the guard and run only with the `Permit` it mints after the audit
row is committed; nothing else calls them.
"""
