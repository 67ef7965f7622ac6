"""The long-running daemon (`tradectl run`): pass serialization, rule-file watching, schedules,
connection supervision, systemd integration and the local control socket.

The reconcile pass itself (observe, plan, gate, act, record) belongs to ``tradectl.runtime``; this
package decides *when* a pass runs and makes sure it never runs twice at once.
"""
