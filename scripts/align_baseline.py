"""python scripts/align_baseline.py: same as seq2seq-align-baseline."""

from seq2seq.cli.align_baseline import main

if __name__ == "__main__":
    main()
