"""The paper-trading desk: instruments, market feeds, the matching engine, accounts, positions and the ledger.

A typed library that knows nothing of doors; `tools.py` exposes it as tools. See README.md in this
folder for the rules the engine follows (queue rule, fees, funding, liquidation, processing order).
"""
