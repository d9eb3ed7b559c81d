"""python scripts/benchmark.py: same as seq2seq-benchmark."""

from seq2seq.cli.benchmark import main

if __name__ == "__main__":
    main()
