"""Research agents: MANTIS challenges, market data for them, honest evaluation, a sandbox, researchers, a runner.

challenges   the seven MANTIS challenges: labels, dimensions, horizons, metrics, weights
data         market data sources (quantdesk's generator, Binance klines) and the Parquet data cache
evaluate     labels, walk-forward scoring with purge and embargo, noise floor, bootstrap, feature reports
sandbox      running strategy code in a child process without network, secrets or the holdout
researchers  who proposes the next strategy: the built-in deterministic one, or Anthropic's API
runner       agents: persisted in SQLite, iterating in the background, resumed after a restart
keys         the Anthropic and CoinGlass keys, 0600 files in the data directory
"""
