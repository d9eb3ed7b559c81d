"""python scripts/translate.py: same as seq2seq-translate."""

from seq2seq.cli.translate import main

if __name__ == "__main__":
    main()
