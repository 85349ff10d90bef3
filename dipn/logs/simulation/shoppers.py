"""Shoppers: latent propensity and activity, device, tastes, profile, a year of pre-period history."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dipn.logs.simulation import catalog as cat
from dipn.logs.simulation.config import SimulationConfig

PRE_DAYS = 365
PAST_CORRELATION = 0.6  # between last year's propensity and today's
LAPSED_SHARE = 0.3  # pre-period purchase rate of users who never buy in the window, relative
N_FAVOURITE_TOPS = 6
# Pre-period daily rates of the history actions: a multiple of the purchase rate plus a share of
# the window-shopping rate (people who never buy still collect and cart).
CART_PER_PURCHASE, CART_FLOOR = 1.5, 0.08
COLLECT_PER_PURCHASE, COLLECT_FLOOR = 1.0, 0.10


@dataclass
class Shoppers:
    """One chunk of users; every array has one row per user."""

    index: np.ndarray  # global user number
    buyer: np.ndarray  # bool: can buy at all
    propensity: np.ndarray  # standard-normal latent score behind buying, activity and profile
    episode_rate: np.ndarray  # purchase episodes per day in the simulated window (density 1)
    window_rate: np.ndarray  # abandoned consideration episodes per day (density 1)
    activity: np.ndarray  # session-rate multiplier (heavy vs light users), mean ~1
    screen_w: np.ndarray
    screen_h: np.ndarray
    hand: np.ndarray  # horizontal centre of the thumb, fraction of the width
    swipe_speed: np.ndarray  # multiplies swipe durations
    swipe_reach: np.ndarray  # multiplies swipe lengths
    dwell: np.ndarray  # multiplies dwell times
    touch_rate: np.ndarray  # multiplies touches per second
    fav_tops: np.ndarray  # (n, N_FAVOURITE_TOPS) top categories the user likes
    fav_cdf: np.ndarray  # (n, N_FAVOURITE_TOPS) cumulative weights over fav_tops
    pre_counts: np.ndarray  # (n, PRE_DAYS, 3) collect/cart/purchase per pre-period day, oldest 1st
    profile: np.ndarray  # (n, 6) age, gender, buyer_star, tm_level, vip_level, phone_price_level

    def __len__(self) -> int:
        return len(self.index)


def _lognormal_mean_one(sigma: float, z: np.ndarray) -> np.ndarray:
    return np.exp(sigma * z - sigma**2 / 2)


def draw_shoppers(
    config: SimulationConfig, first: int, n: int, rng: np.random.Generator
) -> Shoppers:
    index = np.arange(first, first + n, dtype=np.int64)
    propensity = rng.standard_normal(n)
    buyer = rng.random(n) < config.buyer_share
    # Episode rate: log-normal around the configured mean, driven by the propensity.
    rate = config.episodes_per_day * _lognormal_mean_one(0.8, propensity)
    episode_rate = np.where(buyer, rate, 0.0)
    window_rate = config.window_shopping_per_day * _lognormal_mean_one(0.6, rng.standard_normal(n))
    # Activity: heavy and light users, mildly correlated with the propensity.
    z_act = 0.35 * propensity + np.sqrt(1 - 0.35**2) * rng.standard_normal(n)
    activity = _lognormal_mean_one(0.55, z_act)

    device = cat.draw(cat.DEVICE_CDF, rng.random(n))
    screen_w, screen_h, tier = (cat.DEVICES[device, i] for i in range(3))
    hand = np.where(rng.random(n) < 0.88, 0.6, 0.4) + rng.normal(0, 0.04, n)
    swipe_speed = np.exp(rng.normal(0, 0.25, n))
    swipe_reach = np.exp(rng.normal(0, 0.12, n))
    dwell = np.exp(rng.normal(0, 0.25, n))
    touch_rate = np.exp(rng.normal(0, 0.2, n))

    # Tastes: favourite top categories (popular ones more often) with Dirichlet weights.
    fav_tops = cat.draw(cat.TOP_POPULARITY_CDF, rng.random((n, N_FAVOURITE_TOPS)))
    weights = rng.gamma(0.7, 1.0, (n, N_FAVOURITE_TOPS)) + 1e-6
    fav_cdf = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    fav_cdf[:, -1] = 1.0 + 1e-9

    # Pre-period: the past year's purchase rate follows a *past* propensity (correlated 0.6 with
    # today's), at the window's mean rate / festival boost; users who will not buy in the window
    # bought at 30% of that (lapsed and occasional buyers). A day-to-day gamma factor makes
    # weeks differ.
    rho = PAST_CORRELATION
    z_past = rho * propensity + np.sqrt(1 - rho**2) * rng.standard_normal(n)
    base = config.episodes_per_day / config.festival_boost * _lognormal_mean_one(0.8, z_past)
    base = base * np.where(buyer, 1.0, LAPSED_SHARE)
    day_factor = rng.gamma(0.6, 1 / 0.6, (n, PRE_DAYS))
    lam = np.stack([
        (COLLECT_PER_PURCHASE * base + COLLECT_FLOOR * window_rate)[:, None] * day_factor,
        (CART_PER_PURCHASE * base + CART_FLOOR * window_rate)[:, None] * day_factor,
        base[:, None] * day_factor,
    ], axis=-1)  # fmt: skip
    pre_counts = rng.poisson(lam).astype(np.int64)

    profile = _profile(rng, propensity, pre_counts[:, :, 2].sum(axis=1), tier)
    return Shoppers(
        index=index, buyer=buyer, propensity=propensity, episode_rate=episode_rate,
        window_rate=window_rate, activity=activity, screen_w=screen_w, screen_h=screen_h,
        hand=hand, swipe_speed=swipe_speed, swipe_reach=swipe_reach, dwell=dwell,
        touch_rate=touch_rate, fav_tops=fav_tops, fav_cdf=fav_cdf, pre_counts=pre_counts,
        profile=profile,
    )  # fmt: skip


def _profile(rng: np.random.Generator, z: np.ndarray, purchases_year: np.ndarray,
             tier: np.ndarray) -> np.ndarray:
    """Table 3e levels, each mildly tied to the propensity or the purchase history.

    The buyer star grows with lifetime purchases (last year's times 0.5-10 years on the app),
    tm and VIP levels with the star plus noise; age, gender and phone price barely move with the
    propensity.
    """
    n = len(z)
    age = np.clip(np.round(rng.normal(3.6 + 0.2 * z, 1.6)), 0, 8)
    female = rng.random(n) < 0.55 + 0.05 * np.tanh(z)
    gender = np.where(rng.random(n) < 0.05, 0, np.where(female, 1, 2))
    lifetime = purchases_year * rng.uniform(0.5, 10.0, n)
    star = np.clip(np.round(0.9 * np.log1p(lifetime) + 1.5 + rng.normal(0, 2.0, n)), 0, 16)
    tm = np.clip(np.round(star / 4.0 + rng.normal(0, 1.0, n)), 0, 5)
    vip = np.clip(np.round(0.25 * star + 0.2 * z + rng.normal(0, 1.2, n)), 0, 7)
    phone = np.clip(np.round(tier + 0.3 * z + rng.normal(0, 1.0, n)), 0, 10)
    return np.stack([age, gender, star, tm, vip, phone], axis=1).astype(np.int64)


def draw_tops(shoppers: Shoppers, users: np.ndarray, rng: np.random.Generator,
              p_taste: float = 0.85) -> np.ndarray:
    """A top category per row: from the user's favourites (p_taste) or the global popularity."""
    u = rng.random(len(users))
    slot = (u[:, None] >= shoppers.fav_cdf[users]).sum(axis=1)
    fav = shoppers.fav_tops[users, np.minimum(slot, N_FAVOURITE_TOPS - 1)]
    other = cat.draw(cat.TOP_POPULARITY_CDF, rng.random(len(users)))
    return np.where(rng.random(len(users)) < p_taste, fav, other)


def draw_leaves(tops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A leaf category inside each top (popular leaves more often)."""
    offset = np.floor(cat.LEAF_PER_TOP[tops] * rng.random(len(tops)) ** cat.LEAF_SKEW)
    return cat.LEAF_START[tops] + offset.astype(np.int64)
