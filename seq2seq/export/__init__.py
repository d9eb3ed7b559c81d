"""Export a trained run to other inference engines (``seq2seq-export``): CTranslate2 for now."""
