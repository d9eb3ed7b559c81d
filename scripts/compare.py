"""python scripts/compare.py: same as seq2seq-compare."""

from seq2seq.cli.compare import main

if __name__ == "__main__":
    main()
