"""The strategy source the built-in researcher emits: chosen feature families plus an online walk-forward learner.

The emitted file is plain Python (numpy only) that any reader can run against the MANTIS interface:
a Featurizer computing the chosen families from the last rows of the causal view, and a Predictor
that refits an L2 logistic regression (IRLS, class-balanced, standardised) once a day on the rows
whose labels have resolved (row r is used only once r + horizon has passed: the purge), every 5th
row to thin overlapping labels, over a trailing 30-day window. The learner keeps only causal state,
so evaluation and live inference give the same embeddings.
"""

from __future__ import annotations

import json

from quantdesk.tools.agents.challenges import Challenge

FAMILY_WINDOWS: dict[str, int] = {
    "ret_5": 5, "ret_15": 15, "ret_60": 60, "ret_240": 240, "vol_60": 60, "vol_240": 240, "boll_60": 60,
    "boll_240": 240, "rsi_14": 14, "rsi_60": 60, "range_60": 60, "range_pos_240": 240, "volz_240": 240,
    "svol_60": 60, "btc_ret_15": 15, "btc_ret_60": 60, "tod": 1, "fund_level": 1, "fund_chg_480": 480,
}
DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "ret": ("{w}-minute log return", "momentum when positive power, reversal when negative"),
    "vol": ("realised volatility of 1-minute log returns over {w} minutes", "volatility regime"),
    "boll": ("Bollinger z: (close - {w}-minute mean) / {w}-minute std", "mean reversion when negative power"),
    "rsi": ("RSI over {w} minutes, centred at 0", "overbought / oversold"),
    "range": ("high-low range over {w} minutes / close", "range expansion"),
    "range_pos": ("position of the close in the {w}-minute range, 0 = low, 1 = high", "breakout pressure"),
    "volz": ("log(15-minute mean volume / {w}-minute mean volume)", "volume surge"),
    "svol": ("signed volume share over {w} minutes", "order-flow imbalance proxy"),
    "btc_ret": ("BTC's {w}-minute log return", "BTC lead"),
    "tod": ("time of day as sin/cos of the minute of the day", "intraday seasonality"),
    "fund_level": ("latest settled funding rate", "carry / crowding"),
    "fund_chg": ("change of the settled funding rate over {w} minutes", "funding momentum"),
}


def describe_family(family: str) -> dict[str, str]:
    stem, _, window = family.rpartition("_")
    if not window.isdigit():
        stem, window = family, "1"
    text, signal = DESCRIPTIONS.get(stem, (family, ""))
    return {"description": text.format(w=window), "signal": signal}


def warmup_for(families: list[str], challenge: Challenge) -> int:
    return max([FAMILY_WINDOWS[f] for f in families] + [challenge.horizon_minutes, 60]) + 2


def render(challenge: Challenge, families: list[str], *, l2: float = 1.0, header: str = "") -> str:
    """The strategy file for these families on this challenge."""
    target = challenge.assets[0] if len(challenge.assets) == 1 else None
    constants = {
        "KIND": challenge.type, "TARGET": target, "ASSETS": list(challenge.assets), "DIM": challenge.dim,
        "HORIZON": max(challenge.horizon_minutes, 240 if challenge.type == "breakout" else 1),
        "FAMILIES": families, "WARMUP": warmup_for(families, challenge), "L2": l2,
        "VOL_WINDOW": int(challenge.params.get("vol_window", 0)),
    }
    lines = [f'"""{header or "Strategy"} (emitted by quantdesk\'s built-in researcher)."""', "",
             "import numpy as np", "", "from quantdesk_strategy import Featurizer, Predictor", ""]
    lines += [f"{name} = {json.dumps(value)}" for name, value in constants.items()]
    return "\n".join(lines).replace("null", "None").replace("true", "True").replace("false", "False") + BODY


BODY = r'''
LOOKBACK = WARMUP
REFIT_EVERY = 1440
THIN = 5
TRAIN_ROWS = 30 * 1440 // THIN
MIN_TRAIN_ROWS = 300
EPS = 1e-12


def _parse(name):
    stem, _, w = name.rpartition("_")
    return (stem, int(w)) if w.isdigit() else (name, 1)


PARSED = [_parse(name) for name in FAMILIES]


def _mean(x):
    return np.add.reduce(x, axis=0) / x.shape[0]


def _std(x):
    m = _mean(x)
    return np.sqrt(np.maximum(_mean(x * x) - m * m, 0.0))


def family_values(stem, w, c, logc, r, h, l, v, view, btc):
    """One value per asset in view order, from the last LOOKBACK rows (causal)."""
    if stem == "ret":
        return logc[-1] - logc[-1 - w]
    if stem == "vol":
        return _std(r[-w:])
    if stem == "boll":
        window = c[-w:]
        return (c[-1] - _mean(window)) / (_std(window) + EPS)
    if stem == "rsi":
        d = c[-w:] - c[-w - 1:-1]
        up, down = np.add.reduce(np.maximum(d, 0.0), axis=0), np.add.reduce(np.maximum(-d, 0.0), axis=0)
        return up / (up + down + EPS) - 0.5
    if stem == "range":
        return (np.maximum.reduce(h[-w:], axis=0) - np.minimum.reduce(l[-w:], axis=0)) / c[-1]
    if stem == "range_pos":
        hi, lo = h[-w:].max(axis=0), l[-w:].min(axis=0)
        return (c[-1] - lo) / (hi - lo + EPS)
    if stem == "volz":
        return np.log((_mean(v[-15:]) + EPS) / (_mean(v[-w:]) + EPS))
    if stem == "svol":
        return (np.sign(r[-w:]) * v[-w:]).sum(axis=0) / (v[-w:].sum(axis=0) + EPS)
    if stem == "btc_ret":
        return np.full(c.shape[1], logc[-1, btc] - logc[-1 - w, btc])
    if stem == "fund_level" or stem == "fund_chg":
        f = view.funding_matrix(lookback=w + 1)
        f = np.where(np.isfinite(f), f, 0.0)
        return f[-1] if stem == "fund_level" else f[-1] - f[0]
    raise KeyError(stem)


def time_of_day(view):
    minute = (int(view.timestamps(lookback=1)[-1]) // 60000) % 1440
    angle = 2.0 * np.pi * minute / 1440.0
    return np.sin(angle), np.cos(angle)


class FamilyFeaturizer(Featurizer):
    warmup = WARMUP
    compute_interval = 1

    def setup(self, assets, total_timesteps):
        self.assets = list(assets)
        self.columns = [self.assets.index(a) for a in ASSETS if a in self.assets]
        self.target = self.assets.index(TARGET) if TARGET else None
        self.btc = self.assets.index("BTC") if "BTC" in self.assets else 0
        self.names = []
        for (stem, _), name in zip(PARSED, FAMILIES):
            self.names += ["tod_sin", "tod_cos"] if name == "tod" else [name]

    def compute(self, view):
        o = view.ohlcv_matrix(lookback=LOOKBACK)
        c, h, l, v = o[:, :, 3], o[:, :, 1], o[:, :, 2], o[:, :, 4]
        logc = np.log(c)
        r = logc[1:] - logc[:-1]
        rows = []
        for stem, w in PARSED:
            if stem == "tod":
                s, co = time_of_day(view)
                rows += [np.full(c.shape[1], s), np.full(c.shape[1], co)]
            else:
                rows.append(family_values(stem, w, c, logc, r, h, l, v, view, self.btc))
        x = np.stack(rows, axis=1)
        np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        x = x[self.target] if self.target is not None else x[self.columns]
        if self.target is not None:
            out = {name: x[i:i + 1] for i, name in enumerate(self.names)}
        else:
            out = {name: x[:, i] for i, name in enumerate(self.names)}
        out["_x"] = x
        out["_close"] = c[-1, self.columns] if self.target is None else c[-1, self.target:self.target + 1]
        if KIND == "funding_xsec":
            f = view.funding_matrix(lookback=1)[-1]
            out["_funding"] = np.nan_to_num(f[self.columns], nan=0.0)
        return out


def fit_logistic(X, y, weights=None, l2=L2, iterations=25):
    """L2-regularised logistic regression by IRLS on standardised features; returns (mean, sd, w)."""
    mu, sd = X.mean(axis=0), X.std(axis=0) + EPS
    Z = np.hstack([(X - mu) / sd, np.ones((X.shape[0], 1))])
    s = np.ones(X.shape[0]) if weights is None else weights
    penalty = np.r_[np.full(X.shape[1], l2), 0.0]
    w = np.zeros(Z.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(Z @ w, -30, 30)))
        gradient = Z.T @ (s * (p - y)) + penalty * w
        hessian = (Z * (s * p * (1 - p))[:, None]).T @ Z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-7:
            break
    return mu, sd, w


def balanced(y):
    positives = y.mean()
    if positives <= 0 or positives >= 1:
        return None
    return np.where(y > 0, 0.5 / positives, 0.5 / (1 - positives))


def apply(model, x):
    if model is None:
        return None
    mu, sd, w = model
    z = ((x - mu) / sd) @ w[:-1] + w[-1]
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def rolling_std(x, window):
    out = np.full(x.size, np.nan)
    if x.size >= window:
        c1, c2 = np.r_[0.0, np.cumsum(x)], np.r_[0.0, np.cumsum(x * x)]
        s1, s2 = c1[window:] - c1[:-window], c2[window:] - c2[:-window]
        out[window - 1:] = np.sqrt(np.maximum((s2 - s1 * s1 / window) / (window - 1), 0.0))
    return out


class WalkForwardPredictor(Predictor):
    """Stores features every THIN minutes and closes every minute; refits daily on resolved labels."""

    def __init__(self):
        self.k = -1
        self.closes = []
        self.funding = []
        self.rows = []
        self.features = []
        self.models = None

    def predict(self, features):
        self.k += 1
        x = np.asarray(features["_x"], dtype=np.float64)
        self.closes.append(np.asarray(features["_close"], dtype=np.float64))
        if KIND == "funding_xsec":
            self.funding.append(np.asarray(features["_funding"], dtype=np.float64))
        if self.k % THIN == 0:
            self.rows.append(self.k)
            self.features.append(x.astype(np.float32))
        if self.k % REFIT_EVERY == 0 and self.k > 0:
            self.refit()
        return self.emit(x)

    # --- labels of resolved rows (row r is resolved once r + HORIZON <= k) ---------------------------

    def resolved(self):
        """Rows whose label interval has passed (row i of the store is minute i * THIN), the last 30 days."""
        stop = min(len(self.rows), (self.k - HORIZON) // THIN + 1)
        start = max(0, stop - TRAIN_ROWS)
        if stop - start <= 0:
            return np.zeros(0, dtype=np.int64), None
        rows = np.asarray(self.rows[start:stop], dtype=np.int64)
        return rows, np.asarray(self.features[start:stop], dtype=np.float64)

    def refit(self):
        rows, X = self.resolved()
        if X is None or rows.size < MIN_TRAIN_ROWS:
            return
        closes = np.asarray(self.closes)
        if KIND in ("binary", "hitfirst", "lbfgs"):
            self.models = self.fit_single(rows, X, closes[:, 0])
        else:
            self.models = self.fit_pooled(rows, X, closes)

    def fit_single(self, rows, X, close):
        log_p = np.log(close)
        forward = log_p[rows + HORIZON] - log_p[rows]
        if KIND == "binary":
            y = (forward > 0).astype(float)
            return {"up": fit_logistic(X, y, balanced(y))} if balanced(y) is not None else None
        past = np.full(log_p.size, np.nan)
        past[HORIZON:] = log_p[HORIZON:] - log_p[:-HORIZON]
        sigma = rolling_std(np.nan_to_num(past), min(VOL_WINDOW, max(HORIZON * 10, 600)))[rows]
        ok = np.isfinite(sigma) & (sigma > 0)
        rows, X, forward, sigma = rows[ok], X[ok], forward[ok], sigma[ok]
        if rows.size < MIN_TRAIN_ROWS:
            return None
        paths = np.stack([log_p[r + 1:r + 1 + HORIZON] - log_p[r] for r in rows])
        models = {}
        if KIND == "hitfirst":
            up, down = paths >= sigma[:, None], paths <= -sigma[:, None]
            first_up = np.where(up.any(axis=1), up.argmax(axis=1), HORIZON + 1)
            first_down = np.where(down.any(axis=1), down.argmax(axis=1), HORIZON + 1)
            for name, y in (("up", first_up < first_down), ("down", first_down < first_up)):
                y = y.astype(float)
                models[name] = fit_logistic(X, y, balanced(y)) if balanced(y) is not None else None
            return models
        z = forward / sigma
        bucket = np.select([z <= -2, z < -1, z <= 1, z < 2], [0, 1, 2, 3], 4)
        for cls in range(5):
            y = (bucket == cls).astype(float)
            models[f"b{cls}"] = fit_logistic(X, y, balanced(y)) if balanced(y) is not None else None
        steps = np.diff(np.r_[log_p[0], log_p])
        s60 = rolling_std(steps, 60)[rows]
        base = log_p[np.maximum(rows - 1, 0)]
        highest = np.maximum(paths.max(axis=1) + log_p[rows] - base, log_p[rows] - base)
        lowest = np.minimum(paths.min(axis=1) + log_p[rows] - base, log_p[rows] - base)
        for ci, cls in enumerate((0, 1, 3, 4)):
            mask = (bucket == cls) & np.isfinite(s60)
            for k, m in enumerate((0.5, 1.0, 2.0)):
                hit = (highest >= m * s60) if cls <= 1 else (lowest <= -m * s60)
                y = hit[mask].astype(float)
                ok_fit = mask.sum() >= 30 and balanced(y) is not None
                fallback = float(y.mean()) if y.size else 0.5
                models[f"q{ci}{k}"] = fit_logistic(X[mask], y, balanced(y)) if ok_fit else fallback
        return models

    def fit_pooled(self, rows, X, closes):
        if KIND == "funding_xsec":
            f = np.asarray(self.funding)
            target = f[rows + HORIZON] - f[rows]
        elif KIND == "breakout":
            log_c = np.log(closes)
            forward = log_c[rows + HORIZON] - log_c[rows]
            if "range_pos_240" in FAMILIES:
                position = X[:, :, FAMILIES.index("range_pos_240")] - 0.5
            else:
                position = np.sign(forward)
            target = np.sign(forward) * np.sign(position)
        else:
            target = closes[rows + HORIZON] / closes[rows] - 1.0
        if KIND == "breakout":
            y = (target > 0).astype(float)
        else:
            y = (target > np.median(target, axis=1, keepdims=True)).astype(float)
        Xs = self.cross_sectional(X)
        flat, flat_y = Xs.reshape(-1, Xs.shape[-1]), y.reshape(-1)
        return {"up": fit_logistic(flat, flat_y, balanced(flat_y))} if balanced(flat_y) is not None else None

    @staticmethod
    def cross_sectional(X):
        if KIND == "breakout":
            return X
        return (X - X.mean(axis=-2, keepdims=True)) / (X.std(axis=-2, keepdims=True) + EPS)

    # --- embeddings ---------------------------------------------------------------------------------

    def emit(self, x):
        m = self.models
        if KIND == "binary":
            p = apply(m["up"], x) if m else 0.5
            return np.array([p, 1.0 - p])
        if KIND == "hitfirst":
            pu = apply(m.get("up"), x) if m and m.get("up") is not None else 1 / 3
            pd = apply(m.get("down"), x) if m and m.get("down") is not None else 1 / 3
            pu, pd = 0.9 * pu, 0.9 * pd
            pn = max(1.0 - pu - pd, 0.05)
            v = np.array([pu, pd, pn])
            return v / v.sum()
        if KIND == "lbfgs":
            if not m:
                return np.r_[[0.05, 0.15, 0.6, 0.15, 0.05], np.full(12, 0.5)]
            p = np.array([apply(m[f"b{c}"], x) if m.get(f"b{c}") is not None else 0.2 for c in range(5)])
            p = np.clip(p, 1e-4, None)
            p = p / p.sum()
            q = []
            for ci in range(4):
                for k in range(3):
                    model = m[f"q{ci}{k}"]
                    value = apply(model, x) if isinstance(model, tuple) else model
                    q.append(float(np.clip(value, 1e-3, 1 - 1e-3)))
            return np.r_[p, q]
        if m is None:
            scores = np.full(x.shape[0], 0.5)
        else:
            scores = apply(m["up"], self.cross_sectional(x[None])[0])
        if KIND == "breakout":
            return np.column_stack([scores, 1.0 - scores]).reshape(-1)
        return scores
'''
