"""WebShop over user-supplied product data (extra ``webshop``).

agentmc ships its own WebShop engine (search with BM25, product pages,
WebShop's attribute/option/price reward); the product data is the user's,
since it cannot be downloaded here. See :mod:`agentmc.envs.webshop.data` for
the expected files and :mod:`agentmc.envs.webshop.env` for the pages, actions
and splits.

Example:
    >>> from agentmc.envs.webshop import make_webshop
    >>> env = make_webshop("0", data_dir="path/to/webshop/data")  # doctest: +SKIP
    >>> observation, info = env.reset()  # doctest: +SKIP
"""

from __future__ import annotations

from agentmc.envs.webshop.data import Catalogue, Goal, Product, load_catalogue
from agentmc.envs.webshop.env import (
    WebShopConfig,
    WebShopEnv,
    WebShopState,
    default_splits,
    list_task_ids,
    make_webshop,
    read_index_file,
)
from agentmc.envs.webshop.reward import purchase_reward

__all__ = [
    "Catalogue",
    "Goal",
    "Product",
    "WebShopConfig",
    "WebShopEnv",
    "WebShopState",
    "default_splits",
    "list_task_ids",
    "load_catalogue",
    "make_webshop",
    "purchase_reward",
    "read_index_file",
]
