"""Semantic dedup core without a model: guard, clustering on hand-made vectors, cache, config."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import TypeAdapter

from tasks.dedup.decontam import Benchmark
from tasks.dedup.mathtext import number_signature, numbers_agree, worded_math
from tasks.dedup.minhash import DedupError
from tasks.dedup.semantic import (
    Guard,
    SemanticConfig,
    embed_cached,
    embed_key,
    formula_signature,
    formula_spans,
    formulas_agree,
    missing_extra,
    n_clusters_for,
)

faiss = pytest.importorskip("faiss", reason="semantic extra not installed: pip install -e '.[semantic]'")


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Find x if 3x+2=11", "Solve 11 = 2 + 3x for x", True),
        ("Find x if 3x+2=11", "Find x if 3x+2=12", False),
        ("Compute 7 + 5 * 3 - 4.", "What is 5*3 + 7 - 4?", True),
        ("Compute 7 + 5 * 3 - 4.", "Compute 7 - 5 * 3 + 4.", False),
        ("What is the result of 4 minus 1 times 3?", "Compute 4 - 1 * 3.", True),
        ("If 2y minus 7 equals 9, what is y?", "Solve for y: 2y - 7 = 9.", True),
        ("Expand (x + 3)^2.", "Expand (x - 3)^2.", False),
        ("Simplify 18/24.", "Simplify 24/18.", False),
        ("Add 25 to 17.", "What is the sum of 17 and 25?", True),  # no formula: the guard stays out
    ],
)
def test_formula_guard(a, b, same):
    assert formulas_agree(formula_signature(a), formula_signature(b)) is same


def test_formula_signature_refuses_what_it_cannot_evaluate():
    assert formula_spans("Explain why the sky is blue.") == []
    assert formula_signature("Compute 9^9^9^9.") is None  # exponent bomb: no signature, no hang
    assert formula_signature("If x=3 and y=4, what is x+y?") is None  # several formulas
    assert formula_signature("Compute 1/0.") is None
    assert formula_signature("__import__('os') + 1") is None


def test_guard_numbers_are_a_multiset():
    cfg = SemanticConfig()
    g = Guard.of(["Add 3 and 4.", "Add 4 and 3.", "Add 3 and 3 and 4."], cfg)
    assert g.allows(0, 1) and not g.allows(0, 2)


def _unit(rows):
    m = np.asarray(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_clusters_link_close_pairs_with_deterministic_representative():
    from tasks.dedup.semantic import semantic_clusters

    emb = _unit([[1, 0, 0], [0.95, 0.05, 0], [0, 1, 0], [0, 0.97, 0.03], [0, 0, 1]])
    texts = ["Add 1 and 2.", "Sum 1 and 2.", "Add 5 and 6.", "Add 5 and 7.", "Other 9."]
    res = semantic_clusters(["e", "d", "c", "b", "a"], texts, emb, SemanticConfig(threshold=0.9), order_keys=[5, 4, 3, 2, 1])
    cluster = dict(zip(res.rows["item_id"].to_list(), res.rows["cluster_id"].to_list()))
    assert cluster["e"] == cluster["d"] == "d"  # first ingested (order key 4) wins
    assert cluster["c"] == "c" and cluster["b"] == "b"  # cosine passes, numbers differ
    assert res.stats["n_guarded_pairs"] == 1 and res.stats["n_linked_pairs"] == 1
    sims = dict(zip(res.rows["item_id"].to_list(), res.rows["similarity"].to_list()))
    assert sims["d"] == 1.0 and 0.9 < sims["e"] < 1.0 and sims["a"] is None


def test_kmeans_clusters_find_the_same_pairs_as_brute_force():
    from tasks.dedup.semantic import similar_pairs

    rng = np.random.default_rng(0)
    base = _unit(rng.normal(size=(3000, 32)))
    noisy = _unit(base[:300] + rng.normal(scale=0.08, size=(300, 32)))  # 300 planted near copies
    emb = np.ascontiguousarray(np.vstack([base, noisy]))
    full = emb @ emb.T
    truth = {(i, j) for i, j in zip(*np.nonzero(np.triu(full >= 0.9, k=1)))}
    recall = {}
    for n_probe in (1, 4, 8):
        cfg = SemanticConfig(threshold=0.9, n_probe=n_probe)
        pairs, sims, stats = similar_pairs(emb, 0.9, cfg)
        assert stats["n_clusters"] == n_clusters_for(len(emb), cfg) == 57
        found = {tuple(p) for p in pairs.tolist()}
        assert found <= truth
        np.testing.assert_allclose(sims, full[pairs[:, 0], pairs[:, 1]], atol=1e-5)
        recall[n_probe] = len(found) / len(truth)
    # measured with the search symmetric (a pair found from either side): 0.887 with one cluster searched (plain
    # SemDeDup), 0.995 with 4, 1.0 with the default 8
    assert recall[1] < recall[4] <= recall[8] and recall[8] >= 0.98


def test_pair_search_keeps_a_pair_found_from_either_side():
    """IVF search is not symmetric (i's probed clusters may miss j's while j's hold i): every pair comes back once,
    i < j, whichever side found it, with its cosine."""
    from tasks.dedup.semantic import similar_pairs

    rng = np.random.default_rng(3)
    emb = np.ascontiguousarray(_unit(rng.normal(size=(2000, 16))))
    cfg = SemanticConfig(threshold=0.6, n_probe=2)
    pairs, sims, _ = similar_pairs(emb, 0.6, cfg)
    assert (pairs[:, 0] < pairs[:, 1]).all() and len({tuple(p) for p in pairs.tolist()}) == len(pairs)
    np.testing.assert_allclose(sims, (emb[pairs[:, 0]] * emb[pairs[:, 1]]).sum(axis=1), atol=1e-5)
    truth = int(np.triu(emb @ emb.T >= 0.6, k=1).sum())
    assert len(pairs) <= truth


def test_embed_cached_encodes_only_missing_texts():
    store: dict[str, np.ndarray] = {}
    calls: list[list[str]] = []

    def encode(texts):
        calls.append(list(texts))
        return _unit(np.ones((len(texts), 4)) + np.arange(len(texts))[:, None])

    def put(keys, vectors):
        store.update(zip(keys, vectors))

    first, n1 = embed_cached(["a  b", "c", "a b"], encode, lambda keys: {k: store[k] for k in keys if k in store}, put)
    second, n2 = embed_cached(["c", "d", "a b"], encode, lambda keys: {k: store[k] for k in keys if k in store}, put)
    assert (n1, n2) == (2, 1) and calls == [["a b", "c"], ["d"]]  # whitespace-normalised text is the key
    assert np.array_equal(first[0], first[2]) and np.array_equal(second[0], first[1])
    assert embed_key("a  b") == embed_key("a b") != embed_key("A b")


def test_config_from_a_recipe_mapping_is_validated():
    adapter = TypeAdapter(SemanticConfig | None)
    cfg = adapter.validate_python({"enabled": True, "threshold": 0.8, "levels": ["prompt", "trace"]})
    assert cfg.levels == ("prompt", "trace") and str(cfg).startswith("semantic-")
    with pytest.raises(Exception, match="treshold"):
        adapter.validate_python({"enabled": True, "treshold": 0.8})
    with pytest.raises(DedupError, match="threshold"):
        SemanticConfig(threshold=1.5)
    with pytest.raises(DedupError, match="levels"):
        SemanticConfig(levels=("prompts",))


def test_contamination_picks_the_nearest_guarded_item():
    from tasks.dedup.semantic import semantic_contamination

    bench = Benchmark.from_items("b", [("b1", "Add 1 and 2."), ("b2", "Add 1 and 3.")])
    bench_emb = _unit([[1, 0], [1, 0.01]])
    prompts = _unit([[1, 0.005], [0, 1]])
    hits = semantic_contamination(["p1", "p2"], ["Sum 1 and 3.", "Add 1 and 2."], prompts, bench, bench_emb, SemanticConfig())
    assert hits["prompt_id"].to_list() == ["p1"]
    assert hits["benchmark_item_id"].to_list() == ["b2"]  # b1 is nearer but its numbers differ
    assert hits["method"].to_list() == ["embedding"]


def test_missing_extra_names_the_install():
    assert missing_extra() is None  # this module is skipped without faiss; sentence-transformers comes with it


def test_vectorised_guard_matches_the_pairwise_one():
    texts = ["Find x if 3x+2=11", "Solve 11 = 2 + 3x for x", "Find x if 3x+2=12", "Compute 7 + 5 * 3 - 4.",
             "What is 5*3 + 7 - 4?", "Compute 7 - 5 * 3 + 4.", "Add 3 and 4.", "Add 4 and 3.", "2(x+1)=4", "2x+2=4",
             "What is the result of 7 plus 5 times 3 minus 4?", "Explain why the sky is blue.", "Why is the sky blue?"]
    guard = Guard.of(texts, SemanticConfig())
    pairs = np.array([(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts))])
    assert guard.allows_pairs(pairs).tolist() == [guard.allows(i, j) for i, j in pairs.tolist()]


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("What number is 3 more than 11?", "Add 3 to 11. Which number do you get?", True),
        ("What number is 3 more than 11?", "What number is 3 less than 11?", False),  # relation
        ("What is the sum of 17 and 25?", "What is the product of 17 and 25?", False),  # relation
        ("Add 25 to 17.", "What is the sum of 17 and 25?", True),  # commutative: numbers may trade places
        ("Divide 48 by 6.", "Divide 6 by 48.", False),  # roles swapped
        ("Convert 100 degrees Celsius to Fahrenheit.", "Convert 100 degrees Fahrenheit to Celsius.", False),
        ("How many minutes are there in 3 hours?", "Convert 3 hours into minutes.", True),
        ("How many grams are there in 3 kilograms?", "How many kilograms are there in 3 grams?", False),  # unit
        ("A rectangle has length 8 and width 5. What is its area?",
         "A rectangle has length 8 and width 5. What is its perimeter?", False),  # quantity
        ("How many sides does a hexagon have?", "How many sides does an octagon have?", False),  # shape
        ("What is the capital of France?", "What is the capital of Germany?", False),  # substituted word
        ("What is the square of 144?", "What is the square root of 144?", False),  # one more operation
        ("What fraction of 60 is 15?", "15 is what fraction of 60?", True),  # a moved clause
        ("Round 3.746 to two decimal places.", "What is 3.746 rounded to 2 decimal places?", True),
        ("What is the remainder when 29 is divided by 4?", "Compute 29 mod 4.", True),
        ("How much larger is 50 than 18?", "What is the difference between 50 and 18?", True),
    ],
)
def test_content_guard(a, b, same):
    g = Guard.of([a, b], SemanticConfig())
    assert g.allows(0, 1) is same
    assert g.allows(1, 0) is same
    assert g.allows_pairs(np.array([[0, 1]]))[0] == same
    if formula_signature(a) is None or formula_signature(b) is None:  # numbers alone pass ("Divide 48 by 6." is a formula)
        assert Guard.of([a, b], SemanticConfig(content_guard=False)).allows(0, 1)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        # numbers however written (tasks/dedup/mathtext.py)
        ("Twelve workers build a wall in 6 days.", "12 workers build a wall in 6 days.", True),
        ("What is 50% of 90?", "What is half of 90?", True),
        ("Half of 64 is what number?", "What do you get when 64 is divided by 2?", True),
        ("Anna is twice as old as her brother, who is 7.", "Anna is two times as old as her brother, who is 7.", True),
        ("Evaluate 2^5 - 3^2.", "What is 2 to the fifth power minus 3 squared?", True),
        ("Find the value of 3 cubed.", "Find the value of 3 squared.", False),  # worded numbers 3 and 2
        ("Two dice are rolled.", "Three dice are rolled.", False),
        ("A bag has 5 marbles.", "A bag has four marbles.", False),
        ("Find x such that x/4 + 2 = 7.", "If one quarter of x plus 2 equals 7, what is x?", True),  # worded formula
        ("Solve 2a + 6 = 14 for a.", "Solve 2b + 6 = 14 for b.", True),  # one unknown: its name does not matter
        ("x is twice y and y is 7. Find x.", "y is twice x and y is 7. Find x.", False),
        # negation
        ("How many integers from 1 to 100 are divisible by 7?", "How many integers from 1 to 100 are not divisible by 7?", False),
        ("Is 97 a prime number?", "Determine whether or not 97 is a prime number.", True),
        # the same sentence with a content word changed, added or moved
        ("The sum of three consecutive integers is 42. What are the integers?",
         "The sum of three consecutive even integers is 42. What are the integers?", False),
        ("Tom has 12 marbles and gives 4 to Sam. How many marbles does Tom have now?",
         "Tom has 12 marbles and Sam gives him 4. How many marbles does Tom have now?", False),
        ("Subtract 7 from 20.", "Subtract 20 from 7.", False),
        ("A box holds 24 pencils. How many pencils are in 5 boxes?",
         "If there are 24 pencils per box, how many pencils do 5 boxes contain?", True),  # reworded: not one sentence
        # the same setup sentence, another question
        ("A pizza is cut into 8 slices and Tim eats 3. How many slices are left?",
         "A pizza is cut into 8 slices and Tim eats 3. What fraction of the pizza did he eat?", False),
    ],
)
def test_signature_guard(a, b, same):
    g = Guard.of([a, b], SemanticConfig())
    assert g.allows(0, 1) is same
    assert g.allows(1, 0) is same
    assert g.allows_pairs(np.array([[0, 1]]))[0] == same


@pytest.mark.parametrize(
    ("a", "b", "why"),
    [
        # a one-letter unit after a number is no unknown, and it is the unit's word
        ("A pole is 5 m long. How long is its shadow?", "A pole is 5 meters long. How long is its shadow?", None),
        ("A pole is 5 m long. How long is its shadow?", "A pole is 5 feet long. How long is its shadow?", "unit"),
        # numbers trading places: fine inside agreeing expressions, not across an equation's '='
        ("Evaluate 12 - 3 * 2 + 5.", "What is 5 + 12 - 2 * 3?", None),
        ("Solve 3k - 4 = 20 for k.", "Solve 3k - 20 = 4 for k.", "formula"),
        # an equation written expanded or rearranged: what counts is the text around it
        ("Find the value of y: 4(y - 1) = 16.", "Solve 4y - 4 = 16.", None),
        ("Find the intercept of the line y = 2x + 9.", "What is the intercept of the line given by y = 9 + 2x?", None),
        ("Find the slope of the line y = 2x + 9.", "Find the intercept of the line y = 2x + 9.", "substitution"),
        # what is asked: an operand, a percentage, the kind of answer
        ("What is 30% of 120?", "120 is 30% of what number?", "asked_operand"),
        ("What is 30% of 120?", "What percent of 120 is 30?", "asked_given"),
        ("Who designed the Eiffel Tower?", "When was the Eiffel Tower designed?", "asked_kind"),
        ("Who designed the Eiffel Tower?", "The Eiffel Tower was designed by whom?", None),
        ("A square's side is 6. How long is its diagonal?", "Find the diagonal of a square whose side is 6.", None),
        # durations however their unit is chosen; "in total" is filler, "a total of" a sum
        ("A tap drips 3 liters a day. How much does it drip in 3 weeks?",
         "How many liters does a tap that drips 3 liters a day lose in 21 days?", None),
        ("A tap drips 3 liters a day. How much does it drip in 3 weeks?",
         "A tap drips 3 liters a day. How much does it drip in 3 days?", "numbers"),
        ("Three coins are tossed. What is the chance the heads total 2?", "Toss three coins: what is the probability of a total of 2 heads?", None),
        ("How many wheels do 6 bikes have?", "How many wheels do 6 bikes have in total?", None),
        ("How many times does 7 go into 91?", "Divide 91 by 7.", None),
        ("How many times does 7 go into 91?", "What is 7 times 91?", "relation"),
        ("Write a function that sorts a list without using recursion.", "Implement a list sort that does not use recursion.", None),
        ("Write a function that sorts a list using recursion.", "Implement a list sort that does not use recursion.", "negation"),
        # this round: a count on one side only, letters joined to a word, what kind of answer is asked
        ("What is the probability of picking a blue marble?", "What is the probability of picking two blue marbles?", "numbers"),
        ("On a fair six-sided die, what is the chance of a 6?", "What is the probability of rolling a 6 on a fair die?", None),
        ("Find the y-intercept of the line y = 2x + 7.", "Find the x-intercept of the line y = 2x + 7.", "substitution"),
        ("Explain how a binary search works.", "Explain why a binary search needs a sorted list.", "asked_kind"),
        ("Explain what a hash table is.", "Explain how to resize a hash table.", "asked_kind"),
        ("Explain what a linked list is.", "What is a linked list? Explain.", None),
        ("Who discovered penicillin?", "In what year was penicillin discovered?", "asked_kind"),
        ("Write a Python function that checks whether a list is sorted.", "Write a Python function that sorts a list.",
         "asked_yes_no"),
        ("Is 91 a prime number?", "Determine if 91 is prime.", None),
        ("Write a SQL query that lists all customers from Paris.", "Write a SQL query returning how many customers live in Paris.",
         "asked_count"),
        ("Write a function that counts the words in a sentence.",
         "Implement a function returning the number of words a given sentence contains.", None),
        ("Is 121 a perfect square?", "Is 121 a prime number?", "substitution"),  # one two-word phrase for another
        ("A theater has 300 seats and 215 tickets have been sold. How many seats are still available?",
         "A theater has 300 seats and 215 are still available. How many tickets have been sold?", "asked_role"),
        ("A jacket costs 120 dollars and is discounted by 15%. What is the new price?",
         "What does a 120 dollar jacket cost after a 15% price cut?", None),
        # tenth round: what a program gives back, the precision of a rounding, a part of the whole asked
        ("Write a Python function that removes the negative numbers from a list.",
         "Implement a Python function which finds all negative values in a given list.", "asked_output"),
        ("Write a Python function that sorts a list of names.",
         "Implement a Python function that takes a list of names and returns it in alphabetical order.", None),
        ("Write a function that reverses a list.", "Implement a function which returns a copy of the list in reverse order.", None),
        ("Write a Python function that flattens a list of lists.", "Write a Python function that computes the length of a list of lists.",
         "asked_output"),
        ("Write a Python function that returns the median of a list.",
         "Implement a Python function which finds the most frequent element in a given list.", "asked_object"),
        ("Write a Python function that returns the highest score in a list.",
         "Implement a Python function which finds the maximum of a given list of scores.", None),
        ("Write a function that returns the reverse of a string.",
         "Implement a function that takes a string and gives back its characters in reverse order.", None),
        ("A crate holds 6 glass bottles. How many bottles fit in 4 crates?",
         "How many bottles fit in 4 crates if a crate holds 6 bottles?", None),  # a word before the unit
        ("A crate holds 6 glass bottles. How many bottles fit in 4 crates?",
         "A crate holds 6 glass bottles. How many bottles fit in 4 boxes?", "unit"),
        ("Round 12.3456 to the nearest hundredth.", "Round 12.3456 to two decimal places.", None),
        ("Round 12.3456 to the nearest hundredth.", "What is 12.3456 rounded to one decimal place?", "asked_precision"),
        ("A school has 4 buses with 45 students on each bus. How many students ride the buses?",
         "Altogether 45 students ride a school's 4 buses. How many students are on each bus?", "asked_each"),
        ("A school has 4 buses with 45 students on each bus. How many students ride the buses?",
         "How many students ride a school's 4 buses if 45 students are on each bus?", None),
    ],
)
def test_guard_reasons(a, b, why):
    g = Guard.of([a, b], SemanticConfig())
    assert g.conflict(0, 1) == why
    assert (g.conflict(1, 0) is None) is (why is None)
    assert g.allows_pairs(np.array([[0, 1], [1, 0]])).tolist() == [why is None] * 2


def test_number_signature_and_worded_math():
    # a count also reads '#25' and the words after it (so "two blue marbles" / "a blue marble" are told apart)
    assert number_signature("What is 2.50 plus twenty-five?") == (("2.5",), (frozenset({"25", "#25"}),), frozenset())
    assert number_signature("A square of 64 m²")[:2] == (("64",), ())  # m² is a unit, not the number 2
    assert numbers_agree(number_signature("What is 75% of 160?"), number_signature("Compute three quarters of 160."))
    assert numbers_agree(number_signature("What is 40% of 250?"), number_signature("Find two fifths of 250."))
    assert not numbers_agree(number_signature("What is 60% of 250?"), number_signature("Find two fifths of 250."))
    assert numbers_agree(number_signature("What is 25% of 64?"), number_signature("Find a quarter of 64."))
    assert not numbers_agree(number_signature("What is 20% of 64?"), number_signature("Find a quarter of 64."))
    assert worded_math("Compute 5 raised to the third power.") == "compute 5^3."
    assert formula_signature("What is 6 squared plus 8 squared?") == formula_signature("Compute 8^2 + 6^2.")


CHAIN = [  # the toy world's chain: a worded prompt the formula guard cannot read links two formulas
    "Write a Python function f(x) that returns 4*(x + 6).",
    "Implement f(x) in Python that adds six to x and multiplies the sum by four.",
    "Write a Python function f(x) that returns 4*x + 6.",
]


def test_union_find_alone_chains_different_formulas_and_complete_linkage_splits_them():
    from tasks.dedup.semantic import semantic_clusters

    # 0-1 and 1-2 pass the guard (1 is unreadable), 0-2 does not; 0-2 is even the closest pair
    emb = _unit([[1, 0.3, 0], [1, 0, 0.3], [1, 0.3, 0.1]])
    ids, order = ["a", "b", "c"], [1, 2, 3]
    g = Guard.of(CHAIN, SemanticConfig())
    assert g.allows(0, 1) and g.allows(1, 2) and not g.allows(0, 2)
    chained = semantic_clusters(ids, CHAIN, emb, SemanticConfig(threshold=0.9, cluster_guard=False), order_keys=order)
    assert chained.rows["cluster_id"].to_list() == ["a", "a", "a"]  # "4*(x + 6)" merged with "4*x + 6"
    split = semantic_clusters(ids, CHAIN, emb, SemanticConfig(threshold=0.9), order_keys=order)
    clusters = split.rows["cluster_id"].to_list()
    assert clusters[0] != clusters[2]  # never together
    assert clusters[1] in (clusters[0], clusters[2])  # the middle joins its most similar side
    assert split.stats["n_split_links"] >= 1 and split.stats["n_linked_pairs"] == 2


def test_complete_linkage_keeps_every_cluster_guard_consistent():
    """Random links over texts with two formula classes and unreadable ones: no cluster holds a pair the guard rejects."""
    from tasks.dedup.semantic import complete_linkage

    rng = np.random.default_rng(1)
    texts = [CHAIN[i % 3] for i in range(30)]
    g = Guard.of(texts, SemanticConfig())
    pairs = np.array([(i, j) for i in range(30) for j in range(i + 1, 30) if rng.random() < 0.3 and g.allows(i, j)])
    sims = rng.random(len(pairs))
    roots = complete_linkage(np.zeros(30, dtype=np.int64), np.arange(30), pairs, sims, g)
    for r in set(roots.tolist()):
        m = np.flatnonzero(roots == r).tolist()
        assert r == min(m)  # the best-ranked member represents its cluster
        assert all(g.allows(a, b) for a in m for b in m if a < b)


@pytest.mark.parametrize(
    ("text", "formula"),
    [
        ("Implement f(x) in Python: multiply x by 4 and then subtract 6, returning the result.", "(((x)*4)-6)"),
        ("Implement f(x) in Python: add 6 to x and then multiply by 4, returning the result.", "(((x)+6)*4)"),
        ("Subtract 2 from y, then divide by 5.", "(((y)-2)/5)"),
        ("Add 3 to 11.", None),  # no variable
        ("Multiply x by 4.", None),  # one step: not a function of steps
        ("Multiply x by 4 and then take the square root.", None),  # 'take ... root' is no step: one step read
    ],
)
def test_worded_steps(text, formula):
    from tasks.dedup.semantic import worded_steps

    assert worded_steps(text) == formula


def test_worded_steps_read_as_formulas_in_the_guard():
    texts = ["Implement f(x) in Python: multiply x by 4 and then subtract 6, returning the result.",
             "Write a Python function f(x) that returns 4*x - 6.", "Write a Python function f(x) that returns 4*(x - 6)."]
    g = Guard.of(texts, SemanticConfig())
    assert g.allows(0, 1) and not g.allows(0, 2)


def test_complete_linkage_on_the_cosine_keeps_a_chain_apart():
    """a-b and b-c reach the threshold, a-c does not: with cluster_cosine (the default) a and c never share a
    cluster; with it off, the guard alone decides and the chain merges all three."""
    from tasks.dedup.semantic import semantic_clusters

    texts = ["Explain recursion.", "Explain what recursion is.", "Explain recursion with an example."]
    emb = _unit([[1, 0, 0], [0.8, 0.6, 0], [0.3, 0.9, 0.3]])
    sims = emb @ emb.T
    assert sims[0, 1] >= 0.75 and sims[1, 2] >= 0.75 and sims[0, 2] < 0.75
    g = Guard.of(texts, SemanticConfig())
    assert g.allows(0, 1) and g.allows(1, 2) and g.allows(0, 2)
    ids = ["a", "b", "c"]
    chained = semantic_clusters(ids, texts, emb, SemanticConfig(threshold=0.75, cluster_cosine=False)).rows
    assert chained["cluster_id"].n_unique() == 1
    apart = semantic_clusters(ids, texts, emb, SemanticConfig(threshold=0.75)).rows["cluster_id"].to_list()
    assert apart[0] != apart[2] and apart[1] in (apart[0], apart[2])
    assert apart[1] == apart[0]  # b is closer to a (0.80) than to c (0.78): the strongest link wins
