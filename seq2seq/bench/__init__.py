"""Our side of the speed benchmark (speed.py). The peer toolkits' harness is not part of the
package: it lives in ``benchmarks/peers`` of the source checkout."""
