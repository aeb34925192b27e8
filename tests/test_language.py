"""Masked softmax CE, label smoothing, AR and TAR (gluonx/loss/language.py)."""
from cases import family_tests

CASES, test_value_and_gradient_match_reference, test_every_option_changes_the_answer = \
    family_tests("language")
