"""The daily report (`tradectl report`, docs/report.md): fills, P&L and the account, from the
journal."""
