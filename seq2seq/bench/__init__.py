"""Our side of the speed benchmark: the measurements (speed.py) and the run over variants and
precisions (suite.py). The peer toolkits' harness is not part of the package: it lives in
``benchmarks/peers`` of the source checkout, and ``benchmarks/speed.py`` runs it beside ours."""
