"""The runtime: reconcile passes shared by apply, plan and the daemon."""
