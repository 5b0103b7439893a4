"""The search (named so it does not shadow the function ``supernet.search``): plan, metrics, the
pymoo problem, Pareto fronts, candidates, the store of real evaluations, outputs, picks, the loop.
It takes its evaluator and its predictors from its caller."""
