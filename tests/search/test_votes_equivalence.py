"""Votes that group answers by an equivalence (`same`) instead of string equality: pooled counts and weights, the
class returned as its first member, ties, and how often `same` is called. Fakes stand in for math-verify."""

from __future__ import annotations

from search.baselines import majority_vote, weighted_vote


def same_number(first: str, second: str) -> bool:
    return float(first) == float(second)


def test_without_same_only_equal_strings_count_together():
    assert majority_vote(["1", "1", "2", "2.0", "2.00"]) == "1"
    assert weighted_vote(["a1", "b", "a2"], [0.3, 0.5, 0.3]) == "b"


def test_equivalent_answers_pool_their_votes():
    assert majority_vote(["1", "1", "2", "2.0", "2.00"], same=same_number) == "2"


def test_equivalent_answers_pool_their_weights():
    def same_letter(first: str, second: str) -> bool:
        return first[0] == second[0]

    assert weighted_vote(["a1", "b", "a2"], [0.3, 0.5, 0.3], same=same_letter) == "a1"


def test_a_class_is_returned_as_its_first_member():
    assert majority_vote(["2.0", "3", "2"], same=same_number) == "2.0"


def test_ties_between_classes_go_to_the_smaller_first_member():
    # "2" and "1.0" each gather two votes; "1.0" < "2" as strings.
    assert majority_vote(["2", "1.0", "2.0", "1"], same=same_number) == "1.0"
    assert weighted_vote(["2", "1.0", "2.0", "1"], [1.0, 0.5, 1.0, 1.5], same=same_number) == "1.0"


def test_missing_answers_are_left_out():
    assert majority_vote([None, "2", None, "2.0"], same=same_number) == "2"
    assert majority_vote([None, None], same=same_number) is None


def test_same_is_called_once_per_new_string_and_representative_first():
    calls = []

    def recording_same(first: str, second: str) -> bool:
        calls.append((first, second))
        return same_number(first, second)

    assert majority_vote(["1", "1", "1.0", "1.0", "2", "2", "1"], same=recording_same) == "1"
    assert calls == [("1", "1.0"), ("1", "2")]
