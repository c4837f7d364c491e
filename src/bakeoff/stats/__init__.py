"""Statistics: bootstrap intervals, paired tests, across-run tests, verdicts and the fairness audit."""
