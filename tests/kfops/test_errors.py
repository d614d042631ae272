import pytest

from kfops import errors


def test_check_choice_accepts_an_allowed_value():
    errors.check_choice("task", "regression", ("classification", "regression"))


@pytest.mark.parametrize(
    ("allowed", "shown"),
    [
        (("b", "a"), "('b', 'a')"),
        (frozenset({"b", "a"}), "['a', 'b']"),
        ({"b": 1, "a": 2}, "['a', 'b']"),
    ],
)
def test_check_choice_names_the_setting_the_value_and_the_choices(allowed, shown):
    with pytest.raises(errors.ConfigError) as e:
        errors.check_choice("overlay", "c", allowed)
    assert str(e.value) == f"overlay must be one of {shown}, got 'c'"
