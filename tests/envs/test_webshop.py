"""WebShop engine on a small synthetic catalogue written in WebShop's file format."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("bm25s")
pytest.importorskip("rapidfuzz")

from agentmc.envs import check_env  # noqa: E402
from agentmc.envs.webshop import (  # noqa: E402
    WebShopEnv,
    default_splits,
    list_task_ids,
    load_catalogue,
    make_webshop,
)
from agentmc.envs.webshop.data import parse_pricing  # noqa: E402
from agentmc.envs.webshop.reward import title_overlap, type_reward  # noqa: E402
from agentmc.errors import ConfigError, DataError, UnknownNameError  # noqa: E402

KINDS = {
    "headphones": ("electronics › audio › headphones", ["wireless", "noise cancelling"]),
    "sneakers": ("clothing › shoes › sneakers", ["lightweight", "breathable"]),
    "teapot": ("home › kitchen › teapots", ["ceramic", "dishwasher safe"]),
}
BRANDS = ["acme", "zenith", "orbit", "nova", "pico", "terra", "lumen", "vivid"]
COLORS = ["black", "white", "red"]
SIZES = ["small", "medium", "large"]


def write_catalogue(directory, rng: np.random.Generator, n_per_kind: int = 8):
    """Products, attributes and human instructions in WebShop's JSON layout."""
    products, attributes, goals = [], {}, {}
    for kind, (path, kind_attributes) in KINDS.items():
        for k in range(n_per_kind):
            asin = f"B{kind[:3].upper()}{k:05d}"
            brand = BRANDS[k]
            price = float(rng.integers(5, 95)) + 0.99
            products.append(
                {
                    "asin": asin,
                    "name": f"{brand.title()} {kind} {k}",
                    "pricing": f"${price:.2f}",
                    "customization_options": {
                        "Color": [{"value": c.title()} for c in COLORS],
                        "Size": [{"value": s} for s in SIZES],
                    },
                    "full_description": f"The {brand} {kind} for everyday use.",
                    "small_description": [f"Made by {brand}", f"Great {kind}"],
                    "category": kind,
                    "query": kind,
                    "product_category": path,
                }
            )
            attributes[asin] = {"attributes": kind_attributes[: 1 + k % 2]}
            if k % 2 == 0:
                color, size = COLORS[k % 3], SIZES[k % 3]
                goals[asin] = [
                    {
                        "instruction": f"i want {brand} {kind} in {color}, size {size}.",
                        "instruction_attributes": kind_attributes[:1],
                        "instruction_options": [color, size],
                    }
                ]
    files = {
        "items_shuffle_1000.json": products,
        "items_ins_v2_1000.json": attributes,
        "items_human_ins.json": goals,
    }
    for name, value in files.items():
        (directory / name).write_text(json.dumps(value))
    return files


@pytest.fixture
def data_dir(tmp_path):
    write_catalogue(tmp_path, np.random.default_rng(7))
    return tmp_path


def gold_actions(env: WebShopEnv) -> list[str]:
    goal, product = env.goal, env.catalogue.by_asin[env.goal.asin]
    return (
        [f"search[{product.title}]", f"click[{goal.asin}]"]
        + [f"click[{option}]" for option in goal.options]
        + ["click[Buy Now]"]
    )


def test_goals_follow_webshop_construction(data_dir):
    catalogue = load_catalogue(data_dir, goal_order="file")
    # 12 instructions (every other product), one goal per price cap (4 each)
    assert len(catalogue.goals) == 12 * 4
    first = catalogue.goals[0]
    assert first.instruction.endswith("dollars") and "." not in first.instruction[-10:-8]
    product = catalogue.by_asin[first.asin]
    caps = [g.price_cap for g in catalogue.goals[:4]]
    assert caps == sorted(caps) and all(cap > product.price for cap in caps)
    shuffled = load_catalogue(data_dir, goal_order="webshop")
    assert sorted(shuffled.goals, key=catalogue.goals.index) == list(catalogue.goals)
    assert shuffled.goals != catalogue.goals
    assert load_catalogue(data_dir) is shuffled  # cached while the files are unchanged


def test_gold_purchase_scores_one(data_dir):
    for task in ["0", "5", "17"]:
        env = make_webshop(task, data_dir=data_dir)
        observation, _ = env.reset(seed=0)
        assert observation.startswith("WebShop [SEP] Instruction:")
        for action in gold_actions(env):
            result = env.step(action)
        assert result.terminated and result.reward == 1.0 and result.info["success"]
        assert "Your score" in result.observation


def test_partial_credit_follows_the_reward_formula(data_dir):
    env = make_webshop("0", data_dir=data_dir)
    env.reset()
    goal = env.goal
    wrong_color = next(c for c in COLORS if c != goal.options[0])
    actions = gold_actions(env)
    actions[2] = f"click[{wrong_color}]"
    result = [env.step(a) for a in actions][-1]
    # 1 attribute + 2 options + price: 3 of 4 hit, right type
    assert result.reward == pytest.approx(3 / 4)
    assert result.info["r_option"] == 0.5 and not result.info["success"]


def test_wrong_kind_of_product_scores_zero(data_dir):
    env = make_webshop("0", data_dir=data_dir)
    env.reset()
    kind = env.catalogue.by_asin[env.goal.asin].query
    other = next(k for k in KINDS if k != kind)
    env.step(f"search[{other}]")
    asin = env.state.results[0]
    assert env.catalogue.by_asin[asin].query == other
    env.step(f"click[{asin}]")
    result = env.step("click[buy now]")
    assert result.terminated and result.reward == 0.0 and result.info["r_type"] == 0.0


def test_price_above_the_cap_loses_the_price_term(data_dir):
    catalogue = load_catalogue(data_dir, goal_order="file")
    env = WebShopEnv(catalogue, "0")
    goal = env.goal
    env.goal = type(goal)(**{**goal.__dict__, "price_cap": 1.0})
    env.reset()
    result = [env.step(a) for a in gold_actions(env)][-1]
    assert result.reward == pytest.approx(3 / 4) and result.info["r_price"] == 0.0


def test_invalid_actions_change_nothing_and_explain(data_dir):
    env = make_webshop("3", data_dir=data_dir, max_steps=4)
    env.reset()
    before = env.snapshot()
    for action in ["click[buy now]", "buy it", "search[]"]:
        result = env.step(action)
        assert result.info == {"invalid": True} and "Invalid action" in result.observation
        assert env.state.page == before.page
    assert env.step("search[teapot]").truncated  # fourth step hits the cap


def test_pagination_and_navigation(data_dir):
    env = make_webshop("1", data_dir=data_dir)
    env.reset()
    observation = env.step("search[everyday]").observation
    assert "Page 1 (Total results: 24)" in observation and "Next >" in observation
    assert "< Prev" not in observation
    second = env.step("click[Next >]").observation
    assert "Page 2" in second and "< Prev" in second
    asin = env.state.results[10]
    env.step(f"click[{asin.lower()}]")
    assert env.state.page == "item"
    assert "Made by" in env.step("click[features]").observation
    env.step("click[< prev]")
    assert env.state.page == "item"
    env.step("click[< prev]")
    assert env.state.page == "results" and env.state.page_number == 2
    assert env.step("click[back to search]").observation.startswith("WebShop")
    assert env.valid_actions() == [f"search[{env.goal.instruction}]"]


def test_snapshots_are_independent(data_dir):
    env = make_webshop("2", data_dir=data_dir)
    env.reset()
    env.step("search[headphones]")
    saved = env.snapshot()
    after = env.step(f"click[{env.state.results[0]}]")
    env.step("click[buy now]")
    other = make_webshop("2", data_dir=data_dir)
    other.restore(saved)
    assert other.step(f"click[{saved.results[0]}]") == after
    env.restore(saved)
    assert env.state == saved and env.state.steps == 1


def test_search_is_bm25_and_deterministic(data_dir):
    catalogue = load_catalogue(data_dir)
    hits = catalogue.search("zenith teapot", 5)
    assert catalogue.by_asin[hits[0]].title == "Zenith teapot 1"
    assert hits == catalogue.search("zenith teapot", 5)
    assert catalogue.search("xylophone", 5) == []


def test_default_split_is_deterministic_and_groups_products(data_dir):
    catalogue = load_catalogue(data_dir)
    splits = default_splits(catalogue)
    assert sorted(i for ids in splits.values() for i in ids) == list(range(len(catalogue.goals)))
    for name, ids in splits.items():
        others = {catalogue.goals[i].asin for n, o in splits.items() if n != name for i in o}
        assert not {catalogue.goals[i].asin for i in ids} & others
    assert splits["test"] and splits["train"]
    assert list_task_ids("test", data_dir=data_dir) == [str(i) for i in splits["test"]]


def test_split_files_and_their_errors(data_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("splits")
    (folder / "test.json").write_text("[3, 1, 4]")
    (folder / "bad.json").write_text("[3, 999]")
    (folder / "text.json").write_text('{"a": 1}')
    files = {"test": folder / "test.json"}
    assert list_task_ids("test", data_dir=data_dir, split_files=files) == ["3", "1", "4"]
    assert list_task_ids("train", data_dir=data_dir, split_files=files) == []
    with pytest.raises(DataError, match="outside 0..47"):
        list_task_ids("test", data_dir=data_dir, split_files={"test": folder / "bad.json"})
    with pytest.raises(DataError, match="list of integer"):
        list_task_ids("test", data_dir=data_dir, split_files={"test": folder / "text.json"})
    with pytest.raises(UnknownNameError, match="unknown split"):
        list_task_ids("dev", data_dir=data_dir)


def test_missing_data_lists_what_is_expected(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="does not exist"):
        load_catalogue(tmp_path / "nowhere")
    (tmp_path / "items_shuffle.json").write_text("[]")
    with pytest.raises(DataError, match="no items_ins_v2_1000.json or items_ins_v2.json.*asin"):
        load_catalogue(tmp_path)


def test_malformed_files_name_the_problem(tmp_path):
    files = write_catalogue(tmp_path, np.random.default_rng(0), n_per_kind=2)
    (tmp_path / "items_human_ins.json").write_text("{not json")
    with pytest.raises(DataError, match="items_human_ins.json is not valid JSON"):
        load_catalogue(tmp_path)
    (tmp_path / "items_human_ins.json").write_text(json.dumps(files["items_human_ins.json"]))
    broken = [dict(files["items_shuffle_1000.json"][0])]
    del broken[0]["name"]
    (tmp_path / "items_shuffle_1000.json").write_text(json.dumps(broken))
    with pytest.raises(DataError, match="product 0: required field 'name' is missing"):
        load_catalogue(tmp_path)
    broken = [dict(files["items_shuffle_1000.json"][0], pricing="$abc$")]
    (tmp_path / "items_shuffle_1000.json").write_text(json.dumps(broken))
    with pytest.raises(DataError, match="unreadable price"):
        load_catalogue(tmp_path)
    (tmp_path / "items_shuffle_1000.json").write_text(json.dumps([{"asin": "X1", "name": "x"}]))
    with pytest.raises(DataError, match="yields no goals"):
        load_catalogue(tmp_path)


def test_unknown_task_and_reward_setting(data_dir):
    with pytest.raises(UnknownNameError, match="tasks 0..47"):
        make_webshop("48", data_dir=data_dir)
    with pytest.raises(ConfigError, match="purchase reward"):
        make_webshop("0", data_dir=data_dir, reward="dense")


def test_reward_helpers():
    assert parse_pricing("$10.00 - $20.00") == (10.0, "$10.0 to $20.0")
    assert parse_pricing([3.5]) == (3.5, "$3.5")
    assert title_overlap("Acme teapot 0", "Zenith teapot 4") == pytest.approx(1 / 2)
    assert title_overlap("the and", "anything") == 0.2


def test_type_reward_levels(data_dir):
    catalogue = load_catalogue(data_dir, goal_order="file")
    goal = catalogue.goals[0]
    same = catalogue.by_asin[goal.asin]
    assert type_reward(same, goal) == 1.0
    brand = same.title.split()[0]
    unrelated = next(
        p for p in catalogue.products if p.query != same.query and brand not in p.title
    )
    assert type_reward(unrelated, goal) == 0.0
    same_brand = next(p for p in catalogue.products if p.query != same.query and brand in p.title)
    assert type_reward(same_brand, goal) == 1.0  # half the name's words match (> 0.2)


# -- the shipped synthetic sample catalogue ------------------------------------------------


def test_default_is_the_shipped_synthetic_sample_and_says_so(monkeypatch, caplog):
    from agentmc.envs.webshop.sample import SAMPLE_DIR

    monkeypatch.delenv("AGENTMC_WEBSHOP_DATA", raising=False)
    catalogue = load_catalogue()
    assert catalogue.synthetic and len(catalogue.products) == 300
    products = catalogue.products
    assert all(p.asin.startswith("SYN") and "Synthetic" in p.description for p in products)
    assert "NOT WEBSHOP'S DATA" in (SAMPLE_DIR / "NOTICE.txt").read_text()
    env = make_webshop("0")
    assert "synthetic" in env.reset()[1]["data"]
    monkeypatch.setenv("AGENTMC_WEBSHOP_DATA", str(SAMPLE_DIR))
    assert load_catalogue() is catalogue  # same files, same cached catalogue


def test_shipped_sample_is_what_the_generator_writes(tmp_path):
    from agentmc.envs.webshop.sample import SAMPLE_DIR, write_sample

    write_sample(tmp_path)
    for name in ["items_shuffle_1000.json", "items_ins_v2_1000.json", "items_human_ins.json"]:
        assert (tmp_path / name).read_bytes() == (SAMPLE_DIR / name).read_bytes(), name
    assert (tmp_path / "NOTICE.txt").read_text() == (SAMPLE_DIR / "NOTICE.txt").read_text()


def test_sample_tasks_are_solvable_and_split_without_overlap():
    catalogue = load_catalogue(goal_order="webshop")
    splits = {s: set(list_task_ids(s)) for s in ("train", "validation", "test")}
    assert sum(map(len, splits.values())) == len(catalogue.goals) > 600
    assert not (splits["train"] & splits["test"]) and not (splits["validation"] & splits["test"])
    for task in sorted(splits["test"], key=int)[:10]:
        env = make_webshop(task)
        check_env(env, make_fresh=lambda task=task: make_webshop(task))
        env.reset()
        for action in gold_actions(env):
            result = env.step(action)
        assert result.terminated and result.reward == 1.0, (task, result.info)


def test_registered_and_runs_offline_from_the_cli(tmp_path, monkeypatch, capsys):
    from agentmc.cli.main import main
    from agentmc.envs import env_ids, make

    monkeypatch.delenv("AGENTMC_WEBSHOP_DATA", raising=False)
    assert "webshop" in env_ids()
    assert make("webshop", task_id="3").task_id == "3"
    assert main(["tasks", "--env", "webshop"]) == 0
    assert "test" in capsys.readouterr().out
    out = tmp_path / "run"
    args = ["--env", "webshop", "--policy", "random", "--method", "bon", "--particles", "2"]
    assert main(["run", *args, "--n-tasks", "2", "--out", str(out), "--no-progress"]) == 0
    rows = [r["data"] for r in __import__("agentmc").data.store.RunStore.open(out).records()]
    assert len(rows) == 2 and all(r["calls"] > 0 for r in rows)
    assert main(["tasks", "--env", "textcraft", "--data-dir", str(tmp_path)]) == 2
    assert "--data-dir is a WebShop option" in capsys.readouterr().err
