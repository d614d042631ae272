"""The README's figure: a 10 % canary with no errors on either side needs 987 of its own requests
(338 with the fixed-n interval used before) before its error rate is shown within the champion's
upper bound + max_error_increase, the gate `judge` applies before any promotion."""

from kfops import rollout


def _within(n: int, z_of_n) -> bool:
    rule = rollout.RolloutRule()
    champion = rollout.wilson(0, 9 * n, z_of_n(9 * n))  # the other 90 % of the traffic
    challenger = rollout.wilson(0, n, z_of_n(n))
    return challenger[1] <= champion[1] + rule.max_error_increase


def test_a_ten_percent_canary_needs_987_requests_to_clear_the_error_gate():
    rule = rollout.RolloutRule()

    def sequence(n):  # as compare's per-side figures take it
        return rollout.sequence_z(n, rule.min_requests, rule.confidence)

    assert not _within(986, sequence) and _within(987, sequence)

    def fixed(n):
        return rollout.z_of(rule.confidence)

    assert not _within(337, fixed) and _within(338, fixed)
