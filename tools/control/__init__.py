"""The control plane: the running/paused/killed latch, pre-trade risk with reason codes, circuit breakers,
and the append-only decision log. It gates the desk engine (`tools/desk`) and knows nothing of doors."""
