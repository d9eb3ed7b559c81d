"""python scripts/evaluate.py: same as seq2seq-evaluate."""

from seq2seq.cli.evaluate import main

if __name__ == "__main__":
    main()
