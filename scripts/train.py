"""python scripts/train.py [overrides]: same as seq2seq-train."""

from seq2seq.cli.train import main

if __name__ == "__main__":
    main()
