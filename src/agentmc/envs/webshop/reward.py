"""WebShop's purchase reward, as pure functions.

The reward of buying product ``y`` with options ``Y_opt`` for a goal asking
for attributes ``U_att``, options ``U_opt`` and a price cap ``u_price`` is
(Yao et al., 2022, section 3.2)::

    r = r_type * (|U_att ∩ Y_att| + |U_opt ∩ Y_opt| + 1[y_price <= u_price])
               / (|U_att| + |U_opt| + 1)

Attribute and option matches are fuzzy (token-set similarity above 85, via
rapidfuzz, as WebShop does through thefuzz); an attribute also matches when it
appears verbatim in the title, bullet points or description. ``r_type`` guards
against buying the wrong kind of product: 1 if the query or the category
matches or the titles share enough nouns, down to 0 when they share none.
WebShop finds nouns with spaCy; without a language model we take the
lowercased words of the goal's product name that are not stop words. Colour
normalisation is not applied. A purchase with reward 1 is a success.

Example:
    >>> title_overlap("Wireless Bluetooth Headphones", "Bluetooth Headphones, black")
    1.0

References:
    Yao, Chen, Yang, Narasimhan. "WebShop: Towards Scalable Real-World Web
    Interaction with Grounded Language Agents." NeurIPS 2022.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from agentmc.envs.webshop.data import Goal, Product
from agentmc.errors import require

MATCH_THRESHOLD = 85.0
STOP_WORDS = frozenset(
    "a an and are as at be by for from has in is it its of on or that the to with "
    "pack set count oz ounce ounces inch inches x".split()
)


def content_words(text: str) -> set[str]:
    """Lowercased alphabetic words of ``text`` that are not stop words."""
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 1 and w not in STOP_WORDS}


def title_overlap(desired: str, purchased: str) -> float:
    """Fraction of the desired name's content words found in the purchased name."""
    wanted = content_words(desired)
    if not wanted:
        return 0.2  # WebShop's value when the desired name has no nouns
    return len(wanted & content_words(purchased)) / len(wanted)


def type_reward(product: Product, goal: Goal) -> float:
    """``r_type``: 1 for the right kind of product, 0.5, 0.1 or 0 otherwise."""
    query_match = bool(goal.query) and product.query == goal.query
    goal_path = {part.strip() for part in goal.product_category.split("›") if part.strip()}
    product_path = {part.strip() for part in product.product_category.split("›") if part.strip()}
    category_match = len(goal_path & product_path) >= 2
    score = title_overlap(goal.name, product.title)
    r_type = 1.0 if (query_match or category_match or score > 0.2) else 0.5
    if score < 0.1:
        r_type = 0.1
    if score == 0.0:
        r_type = 0.0
    return r_type


@functools.cache
def _fuzz() -> Any:
    return require("rapidfuzz.fuzz", "webshop")


def fuzzy_match(a: str, b: str) -> bool:
    """Token-set similarity above the threshold (order and duplicates ignored)."""
    return bool(_fuzz().token_set_ratio(a, b) > MATCH_THRESHOLD)


def attribute_matches(product: Product, goal: Goal) -> int:
    """How many of the goal's attributes the product has."""
    text = " ".join([product.title, *product.bullets, product.description]).lower()
    hits = 0
    for wanted in goal.attributes:
        if any(fuzzy_match(have, wanted) for have in product.attributes) or wanted in text:
            hits += 1
    return hits


def option_matches(chosen: Sequence[str], goal: Goal) -> int:
    """How many of the goal's options are among the chosen option values."""
    return sum(any(fuzzy_match(have, wanted) for have in chosen) for wanted in goal.options)


def purchase_reward(product: Product, chosen: Mapping[str, str], goal: Goal) -> dict[str, float]:
    """The reward of buying ``product`` with ``chosen`` options, and its parts.

    Args:
        product: What was bought.
        chosen: Option name -> chosen value.
        goal: The task's goal.

    Returns:
        ``reward`` in [0, 1] plus ``r_type``, ``r_attribute``, ``r_option`` and
        ``r_price`` (each a fraction or 0/1).
    """
    r_type = type_reward(product, goal)
    attributes = attribute_matches(product, goal)
    options = option_matches(list(chosen.values()), goal)
    price_ok = float(product.price <= goal.price_cap)
    total = len(goal.attributes) + len(goal.options) + 1
    return {
        "reward": r_type * (attributes + options + price_ok) / total,
        "r_type": r_type,
        "r_attribute": attributes / len(goal.attributes) if goal.attributes else 1.0,
        "r_option": options / len(goal.options) if goal.options else 1.0,
        "r_price": price_ok,
    }
